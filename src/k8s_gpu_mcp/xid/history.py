"""Kernel history across boots: the journal's earlier boots and the rotated kern.log files.

The kernel ring buffer (/dev/kmsg, dmesg) starts over at every boot, and most post-mortems start
after a reboot. The XIDs of earlier boots are in the journal (``journalctl -k -b -1`` and older,
listed by ``journalctl --list-boots``) or in the syslog files under the host root
(``/var/log/kern.log``, ``kern.log.1``, ``kern.log.2.gz`` ..., or ``messages*`` where there is no
kern.log). Every event read here says which boot logged it (its boot id and start where the source
names them, and whether it is the current boot), and the history says how far back it reaches
(``covered_since``): a window that starts earlier is told so, never answered as if it were clean.

Bounded like every other scan: at most ``MAX_BOOTS`` boots and ``MAX_LOG_FILES`` files, each scanned
with the scanner's caps (buffer, line length, file tail, event cap), a gzip file to its first
``MAX_FILE_BYTES`` decompressed, and one deadline for the whole history. Each cut is a note.
Paths, the PATH, ``now`` and the current boot are injectable for tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from .parse import KernelEvent, LineParser, SxidEvent, parse_prefix
from .scan import SCAN_DEADLINE_S, scan_file, scan_gzip

HISTORY_DEADLINE_S = SCAN_DEADLINE_S  # one budget for every boot and file of the history
MAX_BOOTS = 32  # journal boots read, newest first
MAX_LOG_FILES = 16  # rotated files read, newest first
BOOT_MATCH_S = 120.0  # a boot start derived from a line (time - uptime) matches a known boot this close
LIST_BOOTS_MAX_BYTES = 1 << 20
FIRST_LINE_BYTES = 64 << 10
LOG_FAMILIES = ("kern.log", "messages")  # Debian/Ubuntu rsyslog, then RHEL/SUSE (the first that exists)
_ROTATED = re.compile(r"^(?P<base>kern\.log|messages)(?:\.(?P<n>\d+)|-(?P<date>\d{8}))?(?P<gz>\.gz)?$")
_BOOT_ID = re.compile(r"^[0-9a-f]{32}$")
# `journalctl --list-boots` text (systemd before JSON output): IDX BOOT-ID FIRST [—] LAST
_BOOT_LINE = re.compile(r"^\s*(?P<idx>-?\d+)\s+(?P<id>[0-9a-f]{32})\s+(?P<rest>.*)$")
_BOOT_TIME = re.compile(
    r"(?:[^\W\d_]{2,4},? )?(?P<t>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?: (?P<tz>[A-Z]{1,5}|[+-]\d{4}))?"
)
_UTC_NAMES = ("UTC", "GMT", "Z", "+0000", "-0000")  # fmt: skip

BootName = Literal["current", "previous"]


@dataclass(slots=True)
class Boot:
    """One boot of the node, as a history source knows it."""

    boot_id: str | None  # 32 hex digits (the journal's form); None when the source does not name it
    started: datetime | None  # the boot's first journal entry, or its start derived from a log line
    last: datetime | None  # its last journal entry (None for the current boot or a file-derived boot)
    current: bool
    index: int | None = None  # journalctl's offset: 0 the newest boot in the journal, -1 the one before
    source: str = "journal"  # journal | kern.log | messages | proc


@dataclass(slots=True)
class History:
    """XID and SXid events over earlier boots, with how far back the logs reach."""

    events: list[KernelEvent] = field(default_factory=list)
    sxids: list[SxidEvent] = field(default_factory=list)
    boots: list[Boot] = field(default_factory=list)
    covered_since: datetime | None = None  # the earliest time the sources read cover
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


def normalize_boot_id(text: str | None) -> str | None:
    """``/proc/sys/kernel/random/boot_id`` (a UUID) or a journal boot id -> 32 lowercase hex, or None."""
    value = (text or "").strip().lower().replace("-", "")
    return value if _BOOT_ID.match(value) else None


def read_boot_id(proc_root: str | Path = "/proc") -> str | None:
    """This kernel's boot id (the journal's ``_BOOT_ID``); None when unreadable."""
    try:
        return normalize_boot_id((Path(proc_root) / "sys/kernel/random/boot_id").read_text(errors="replace"))
    except OSError:
        return None


# ---- the journal ----------------------------------------------------------------------------------
HOST_JOURNALCTL = ("usr/bin/journalctl", "bin/journalctl")
JOURNALCTL = ("journalctl",)


def journal_command(host_root: str | Path) -> tuple[str, ...]:
    """How to run journalctl on the host's journal. In a pod with the host at ``host_root`` and root
    (the debugger pod), the host's own journalctl through chroot: the image has none, and the host's
    reads its own journal format (newer systemd writes what an older journalctl cannot read).
    Elsewhere this machine's journalctl, on the host root's journal directory."""
    root = Path(host_root)
    if (
        root.resolve() != Path("/")
        and os.geteuid() == 0
        and shutil.which("chroot") is not None
        and any((root / p).is_file() for p in HOST_JOURNALCTL)
    ):
        return ("chroot", str(root), "journalctl")
    return JOURNALCTL


def list_boots_argv(journal_dir: str | None = None, command: Sequence[str] = JOURNALCTL) -> list[str]:
    argv = [*command, "--list-boots", "-o", "json", "--no-pager", "--utc"]
    return [*argv, "-D", journal_dir] if journal_dir else argv


def boot_argv(
    boot_id: str, since: datetime | None, journal_dir: str | None = None, command: Sequence[str] = JOURNALCTL
) -> list[str]:
    """The kernel messages of one boot: ``journalctl -k -b <id>`` (from ``since`` when given)."""
    argv = [*command, "-k", "-b", boot_id, "-o", "short-iso", "--no-pager", "-q"]
    if journal_dir:
        argv += ["-D", journal_dir]
    if since is not None:
        argv.append(f"--since=@{int(since.timestamp())}")
    return argv


def _epoch_us(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)) / 1e6, UTC) if value not in (None, "") else None
    except (ValueError, OverflowError, OSError):
        return None


def _text_time(match: re.Match[str] | None) -> datetime | None:
    if match is None or (match["tz"] or "UTC") not in _UTC_NAMES:  # asked with --utc and TZ=UTC
        return None
    try:
        return datetime.fromisoformat(match["t"]).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_list_boots(text: str) -> list[Boot]:
    """``journalctl --list-boots`` output, JSON (systemd 251+) or the older text table; oldest first.
    ``current`` is left False (the caller knows this kernel's boot id)."""
    boots: list[Boot] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except ValueError:
            rows = []
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or not (bid := normalize_boot_id(str(row.get("boot_id") or ""))):
                continue
            index = row.get("index")
            boots.append(
                Boot(bid, _epoch_us(row.get("first_entry")), _epoch_us(row.get("last_entry")), False,
                     index if isinstance(index, int) else None)
            )  # fmt: skip
    else:
        for line in text.splitlines():
            m = _BOOT_LINE.match(line)
            if not m:
                continue
            times = list(_BOOT_TIME.finditer(m["rest"]))
            first = _text_time(times[0] if times else None)
            last = _text_time(times[1] if len(times) > 1 else None)
            boots.append(Boot(m["id"], first, last, False, int(m["idx"])))
    boots.sort(key=lambda b: b.index if b.index is not None else 0)
    return boots


def _capture(argv: Sequence[str], timeout: float, env: dict[str, str] | None) -> str:
    """A short command's output (at most LIST_BOOTS_MAX_BYTES), within ``timeout`` seconds."""
    base = dict(env if env is not None else os.environ)
    exe = shutil.which(argv[0], path=base.get("PATH"))
    if exe is None:
        raise FileNotFoundError(f"{argv[0]} not found on PATH")
    base["TZ"] = "UTC"  # the text table prints local time; --utc and TZ make it UTC
    with subprocess.Popen(
        [exe, *argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=base,
    ) as proc:
        assert proc.stdout is not None
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    if proc.returncode != 0 and not out.strip():
        raise RuntimeError(f"{argv[0]} exited with status {proc.returncode}")
    return out[:LIST_BOOTS_MAX_BYTES].decode("utf-8", "replace")


def _mark_current(boots: list[Boot], current_id: str | None, current_start: datetime | None) -> None:
    for b in boots:
        if current_id is not None:
            b.current = b.boot_id == current_id
        elif current_start is not None and b.started is not None:
            b.current = abs((b.started - current_start).total_seconds()) <= BOOT_MATCH_S
        else:
            b.current = b.index == 0


def read_journal(
    history: History,
    *,
    since: datetime | None,
    now: datetime,
    journal_dir: str | None,
    env: dict[str, str] | None,
    stop_at: float,
    current_id: str | None,
    current_start: datetime | None,
    skip_current: bool,
    command: Sequence[str] = JOURNALCTL,
) -> datetime | None:
    """Read the kernel messages of the journal's boots that reach into the window, newest first, into
    ``history``; return the earliest time covered (None when the journal could not be read)."""
    from .sources import _run

    try:
        boots = parse_list_boots(
            _capture(list_boots_argv(journal_dir, command), max(stop_at - time.monotonic(), 1), env)
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        history.unavailable["journal"] = f"{type(exc).__name__}: {exc}"
        return None
    if not boots:
        history.unavailable["journal"] = "journalctl --list-boots listed no boot"
        return None
    _mark_current(boots, current_id, current_start)
    history.boots.extend(boots)
    covered: datetime | None = None
    wanted = [b for b in reversed(boots) if since is None or b.last is None or b.last >= since]
    if len(wanted) > MAX_BOOTS:
        history.notes.append(f"journal: only the newest {MAX_BOOTS} of {len(wanted)} boots were read")
        wanted, complete = wanted[:MAX_BOOTS], False
    else:
        complete = True
    for boot in wanted:
        assert boot.boot_id is not None
        left = stop_at - time.monotonic()
        if left <= 0:
            history.notes.append("journal: the history's deadline passed before the older boots were read")
            complete = False
            break
        start_at = since if since is not None and (boot.started is None or boot.started < since) else None
        if not (boot.current and skip_current):  # else the live source read this boot's journal already
            try:
                parser = _run(boot_argv(boot.boot_id, start_at, journal_dir, command), left, env, now=now)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                history.unavailable[f"journal.boot {boot.boot_id}"] = f"{type(exc).__name__}: {exc}"
                complete = False  # a gap: what is older than this boot does not make the window whole
                continue
            history.notes.extend(f"journal boot {boot.boot_id[:12]}: {n}" for n in parser.notes)
            _take(history, parser, "journal", boot)
            if "journal" not in history.sources:
                history.sources.append("journal")
        covered = min(filter(None, (covered, start_at or boot.started)), default=covered)
    older = [b.last for b in boots if b not in wanted and b.last is not None and since and b.last < since]
    if complete and older and since is not None:  # the journal goes on before the window: all of it read
        covered = since
    return covered


# ---- rotated files --------------------------------------------------------------------------------
def rotated_logs(log_dir: str | Path) -> list[Path]:
    """The first family (kern.log, else messages) of syslog files in ``log_dir``, newest first:
    ``kern.log``, ``kern.log.1``, ``kern.log.2.gz`` ... (or ``messages-YYYYMMDD[.gz]``)."""
    try:
        names = os.listdir(log_dir)
    except OSError:
        return []
    for family in LOG_FAMILIES:
        found = []
        for name in names:
            m = _ROTATED.match(name)
            if m and m["base"] == family and (Path(log_dir) / name).is_file():
                # the live file first, then .1, .2 ... (older), dated ones newest date first
                key = (
                    (0, 0)
                    if not (m["n"] or m["date"])
                    else (1, int(m["n"]))
                    if m["n"]
                    else (1, -int(m["date"]))
                )
                found.append((key, Path(log_dir) / name))
        if found:
            return [p for _, p in sorted(found)]
    return []


def _open_head(path: Path) -> bytes:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read(FIRST_LINE_BYTES)


def first_line_time(path: Path, now: datetime) -> datetime | None:
    """The time of a log file's first dated line: where the file's coverage starts."""
    try:
        head = _open_head(path)
    except (OSError, EOFError, zlib.error):
        return None
    for raw in head.split(b"\n")[:64]:
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            continue
        ts = parse_prefix(line[:64], now=now)
        if ts.wall is not None and ts.kind in ("syslog", "iso", "ctime"):
            return ts.wall
    return None


def read_files(
    history: History,
    files: Sequence[Path],
    *,
    since: datetime | None,
    now: datetime,
    stop_at: float,
    current_start: datetime | None = None,
) -> datetime | None:
    """Scan rotated files newest first until one ends before ``since``; the earliest time covered."""
    covered: datetime | None = None
    read = 0
    for path in files:
        try:
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError as exc:
            history.unavailable[f"file {path.name}"] = f"{type(exc).__name__}: {exc}"
            continue
        if since is not None and mtime < since and read:
            break  # its newest line is older than the window: so is every older file
        if read == MAX_LOG_FILES:
            history.notes.append(f"{path.parent}: only the newest {MAX_LOG_FILES} rotated files were read")
            break
        left = stop_at - time.monotonic()
        if left <= 0:
            history.notes.append(f"{path.name}: the history's deadline passed before it was read")
            break
        scan = scan_gzip if path.name.endswith(".gz") else scan_file
        try:
            parser = scan(path, now=now, derive_boot=True, deadline_s=left)
        except (OSError, EOFError, zlib.error) as exc:
            history.unavailable[f"file {path.name}"] = f"{type(exc).__name__}: {exc}"
            continue
        read += 1
        first = first_line_time(path, now)
        covered = min(filter(None, (covered, first)), default=covered)
        family = _ROTATED.match(path.name)
        name = family["base"] if family else "file"
        history.notes.extend(f"{path.name}: {n}" for n in parser.notes)
        _take(history, parser, name, None)
        for segment_start in parser._anchors.values():  # noqa: SLF001 - the boots the file itself dates
            _file_boot(history, segment_start, name, current_start)
        if name not in history.sources:
            history.sources.append(name)
    return covered


def _file_boot(history: History, started: datetime, source: str, current_start: datetime | None) -> Boot:
    known = _match_boot(history.boots, started)
    if known is not None:
        return known
    current = current_start is not None and abs((started - current_start).total_seconds()) <= BOOT_MATCH_S
    boot = Boot(None, started, None, current, None, source)
    history.boots.append(boot)
    return boot


def _match_boot(boots: Sequence[Boot], started: datetime) -> Boot | None:
    close = [b for b in boots if b.started and abs((b.started - started).total_seconds()) <= BOOT_MATCH_S]
    return min(close, key=lambda b: abs((b.started - started).total_seconds())) if close else None  # type: ignore[operator]


# ---- boot attribution -----------------------------------------------------------------------------
def _take(history: History, parser: LineParser, source: str, boot: Boot | None) -> None:
    for ev in parser.events:
        ev.source = source
        if boot is not None:
            _set_boot(ev, boot)
        history.events.append(ev)
    history.sxids.extend(parser.sxids)


def _set_boot(ev: KernelEvent, boot: Boot) -> None:
    ev.boot = "current" if boot.current else "previous"
    ev.boot_id, ev.boot_started = boot.boot_id, boot.started


def attribute(events: Sequence[KernelEvent], boots: Sequence[Boot], current_start: datetime | None) -> None:
    """Name the boot of each event that has none yet: from its uptime (time - uptime is the boot's
    start), else from the boots' time ranges, else current/previous from the current boot's start."""
    for ev in events:
        if ev.boot is not None:
            continue
        if ev.timestamp is not None and ev.uptime_s is not None:
            started = ev.timestamp - timedelta(seconds=ev.uptime_s)
            known = _match_boot(boots, started)
            if known is not None:
                _set_boot(ev, known)
                continue
            ev.boot_started = started
            is_current = (
                current_start is not None and abs((started - current_start).total_seconds()) <= BOOT_MATCH_S
            )
            ev.boot = "current" if is_current else "previous" if current_start is not None else None
            continue
        if ev.timestamp is None:
            continue
        ranged = [
            b
            for b in boots
            if b.started and b.started <= ev.timestamp and (b.last is None or ev.timestamp <= b.last)
        ]
        if ranged:
            _set_boot(ev, max(ranged, key=lambda b: b.started))  # type: ignore[arg-type,return-value]
        elif current_start is not None:
            ev.boot = "current" if ev.timestamp >= current_start else "previous"


def read_history(
    host_root: str | Path,
    *,
    since: datetime | None,
    now: datetime | None = None,
    journal_dir: str | None = None,
    env: dict[str, str] | None = None,
    current_id: str | None = None,
    current_start: datetime | None = None,
    skip_current: bool = False,
    use_journal: bool = True,
    deadline_s: float = HISTORY_DEADLINE_S,
) -> History:
    """The kernel's XIDs, lost GPUs and SXids from earlier boots: the journal (``journal_dir``, or
    the host root's ``var/log/journal`` when it exists) and, where the journal is unreadable or
    does not reach ``since``, the rotated syslog files in the host root's ``var/log``.
    ``skip_current``: the live source already read the current boot's journal."""
    now = now or datetime.now(UTC)
    stop_at = time.monotonic() + deadline_s
    history = History()
    root = Path(host_root)
    command = journal_command(root) if journal_dir is None else JOURNALCTL
    if command == JOURNALCTL and journal_dir is None and (root / "var/log/journal").is_dir():
        journal_dir = str(root / "var/log/journal")
    covered: list[datetime] = []
    journal_covered = None
    if use_journal:
        journal_covered = read_journal(
            history, since=since, now=now, journal_dir=journal_dir, env=env, stop_at=stop_at,
            current_id=current_id, current_start=current_start, skip_current=skip_current, command=command,
        )  # fmt: skip
        if journal_covered is not None:
            covered.append(journal_covered)
    if journal_covered is None or since is None or journal_covered > since:
        files = rotated_logs(root / "var/log")
        if files:
            file_covered = read_files(
                history, files, since=since, now=now, stop_at=stop_at, current_start=current_start
            )
            if file_covered is not None:
                covered.append(file_covered)
        else:
            history.unavailable["kern.log"] = f"no kern.log or messages file in {root / 'var/log'}"
    for b in history.boots:
        if b.current and b.boot_id is None:
            b.boot_id = current_id
    if current_start is not None and not any(b.current for b in history.boots):
        history.boots.append(Boot(current_id, current_start, None, True, None, "proc"))
    attribute(history.events, history.boots, current_start)
    history.boots.sort(key=lambda b: b.started or datetime.min.replace(tzinfo=UTC))
    history.covered_since = min(covered, default=None)
    return history


def reach_note(covered_since: datetime | None, since: datetime | None, sources: Sequence[str]) -> str | None:
    """The note a window gets when the history read does not reach back to its start."""
    if since is None and covered_since is not None:
        return (
            f"The kernel history read ({', '.join(sources) or 'none'}) reaches back to "
            f"{covered_since.isoformat()}; nothing older can be seen."
        )
    if since is None or (covered_since is not None and covered_since <= since):
        return None
    if covered_since is None:
        return (
            f"The kernel history could not be dated back to {since.isoformat()}: no source read tells "
            "how far back it reaches; XIDs before the current boot may be missing."
        )
    return (
        f"The kernel history read ({', '.join(sources) or 'none'}) reaches back only to "
        f"{covered_since.isoformat()}, not to {since.isoformat()}: XIDs before that cannot be seen "
        "(the journal or the rotated kern.log files were vacuumed or do not go further)."
    )
