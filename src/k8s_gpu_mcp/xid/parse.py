"""Kernel-log line parser for NVIDIA XID, SXid and lost-GPU reports.

Accepts every prefix style seen in the wild: dmesg uptime ``[ 1234.567890]`` (with or without a
``[ T123]`` caller id), ``dmesg -T`` ctime, ISO-8601 (dmesg --time-format iso, journalctl -o
short-iso, remote-log collectors), syslog ``Mon DD HH:MM:SS host kernel:`` in any locale, and raw
``/dev/kmsg`` records ``prio,seq,usec,flags;msg``. The XID number is taken only from
``NVRM: Xid (<bdf>): <N>,``. The parser never raises: a prefix it cannot date keeps
``timestamp=None`` and says why in ``timestamp_note``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal

from k8s_gpu_mcp.gpu.pci import normalize_bus_id

TimestampKind = Literal["uptime", "kmsg", "ctime", "iso", "syslog", "nvml", "none"]
EventKind = Literal["xid", "gpu_lost"]

XID_RE = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<xid>\d+)(?:,|$)(?P<rest>.*)")
SXID_RE = re.compile(
    r"nvidia-nvswitch(?P<switch>\d+): SXid \((?P<pci>[^)]*)\): (?P<sxid>\d+)(?:,|$)\s*(?P<rest>.*)"
)
_PID_RE = re.compile(r"^\s*pid=(?P<pid>'[^',]*'|<unknown>|<n/a>|-?\d+)\s*(?:,|$)")
_NAME_RE = re.compile(r"^\s*name=(?P<name>.*?)(?:, |,$|$)")
_CAUSED_BY_RE = re.compile(r"caused by previous Xid (\d+)")
_LOST_HEAD_RE = re.compile(
    r"NVRM: The NVIDIA GPU (?P<pci>[0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)"
)
_LOST_TAIL = "fallen off the bus and is not responding to commands"
# The one-line form the driver prints whether or not an XID 79 follows.
_LOST_LINE_RE = re.compile(
    r"NVRM: GPU (?:at )?(?:PCI:)?(?P<pci>[0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?): "
    r"GPU has fallen off the bus"
)
FUTURE_SLACK = timedelta(minutes=5)  # clock skew tolerated before a time counts as in the future
NO_BOOT_NOTE = (
    "uptime stamp; the boot time of the host and boot that wrote this log is unknown "
    "(give --boot-time, or the log has no wall-clock line to date it from)"
)
_RTC_RE = re.compile(r"setting system clock to \S+ \S+ \((?P<epoch>\d+)\)")
MAX_EVENTS = 10_000  # kept per parser (the newest): a log of nothing but XID lines stays bounded
LOST_SECONDS_APART = 10.0  # a lost-GPU report and its XID 79 are printed together, within this time
# ---- timestamp prefixes ------------------------------------------------------------------------
_KMSG_RE = re.compile(r"^(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;")
_UPTIME_RE = re.compile(r"\[\s*(?P<up>\d+\.\d+)\]")
_CTIME_RE = re.compile(
    r"\[(?P<wd>\S+) (?P<mon>\S+) +(?P<day>\d{1,2}) (?P<t>\d{2}:\d{2}:\d{2}) (?P<year>\d{4})\]"
)
_ISO_RE = re.compile(
    r"(?P<iso>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_SYSLOG_RE = re.compile(r"^(?P<mon>[^\W\d_][^\s\d]{1,5}) +(?P<day>\d{1,2}) (?P<t>\d{2}:\d{2}:\d{2}) ")

_MONTHS = {
    # English, then common German/French/Spanish/Italian/Dutch/Portuguese abbreviations.
    **{m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    "sept": 9, "mär": 3, "mrz": 3, "mai": 5, "okt": 10, "dez": 12, "janv": 1, "févr": 2, "fév": 2, "mars": 3,
    "avr": 4, "juin": 6, "juil": 7, "août": 8, "aoû": 8, "déc": 12, "ene": 1, "abr": 4, "ago": 8, "dic": 12,
    "gen": 1, "mag": 5, "giu": 6, "lug": 7, "set": 9, "ott": 10, "mei": 5, "okt.": 10, "fev": 2, "out": 10,
    "dez.": 12,
}  # fmt: skip


@dataclass(slots=True)
class Timestamp:
    """A kernel log line's time: wall clock or uptime, as read."""

    kind: TimestampKind = "none"
    wall: datetime | None = None
    uptime_s: float | None = None
    note: str | None = None
    prefix: str = ""


@dataclass(slots=True)
class KernelEvent:
    """One GPU event from the kernel log: an XID line or a no-XID lost-GPU report."""

    kind: EventKind
    xid: int | None
    pci: str | None  # exactly as printed
    bus_id: str | None  # NVML form 00000000:3B:00.0, None when the printed id is not a PCI address
    pid: int | None
    process: str | None
    message: str
    raw: str
    timestamp: datetime | None
    uptime_s: float | None
    timestamp_kind: TimestampKind
    timestamp_note: str | None
    caused_by_xid: int | None = None
    sympathetic: bool = False
    source: str = "kernel"
    gpu_index: int | None = None  # known when the source is NVML, else resolved from bus_id
    boot_segment: int = 0  # which boot of the log (a smaller uptime than the line before starts the next)
    boot: Literal["current", "previous"] | None = None  # the boot that logged it, when known (xid/history.py)
    boot_id: str | None = None  # systemd's boot id (32 hex digits), when the journal or /proc names it
    boot_started: datetime | None = None  # when that boot started (or its first journal entry)


@dataclass(slots=True)
class SxidEvent:
    """One NVSwitch SXid report (never a GPU XID); Severity/Data follow-up lines go to ``details``."""

    sxid: int
    switch: int
    pci: str
    bus_id: str | None
    fatal: bool | None
    link: int | None
    message: str
    raw: str
    timestamp: datetime | None
    timestamp_kind: TimestampKind
    details: list[str] = field(default_factory=list)


# ---- PCI ids -----------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
# ---- timestamps --------------------------------------------------------------------------------
def _month(name: str) -> int | None:
    key = name.lower().rstrip(".")
    return _MONTHS.get(key) or _MONTHS.get(key[:3])


def parse_prefix(
    prefix: str, *, boot_time: datetime | None = None, now: datetime | None = None, tz: tzinfo | None = None
) -> Timestamp:
    """Date a line from the text before the message. Uptime stamps need ``boot_time`` for wall clock."""
    ts = Timestamp(prefix=prefix)
    if prefix.startswith("[") and (u := _UPTIME_RE.match(prefix)):  # plain dmesg: the common case
        ts.kind, ts.uptime_s = "uptime", float(u["up"])
        if boot_time is None:
            ts.note = "uptime stamp and no boot time to convert it"
        else:
            ts.wall = (boot_time + timedelta(seconds=ts.uptime_s)).astimezone(UTC)
        return ts
    m = _KMSG_RE.match(prefix)
    if m:
        ts.kind, ts.uptime_s = "kmsg", int(m["usec"]) / 1e6
    elif m := _ISO_RE.search(prefix):
        ts.kind = "iso"
        frac = (m["frac"] or "")[:6].ljust(6, "0")
        tzs = m["tz"] or ""
        try:
            wall = datetime.fromisoformat(
                f"{m['iso'].replace(' ', 'T')}.{frac}{'+00:00' if tzs == 'Z' else tzs}"
            )
            ts.wall = (
                wall if wall.tzinfo else wall.replace(tzinfo=tz).astimezone(UTC) if tz else wall.astimezone()
            )
        except ValueError as exc:
            ts.note = f"unparseable ISO timestamp: {exc}"
    elif m := _CTIME_RE.search(prefix):
        ts.kind = "ctime"
        ts.wall, ts.note = _calendar(m["mon"], m["day"], m["t"], int(m["year"]), tz)
    elif m := _SYSLOG_RE.match(prefix):
        ts.kind = "syslog"
        ref = now or datetime.now(UTC)
        ts.wall, ts.note = _calendar(m["mon"], m["day"], m["t"], ref.year, tz)
        if ts.wall is not None and ts.wall - ref > timedelta(
            days=1
        ):  # syslog has no year: last year's December
            ts.wall = ts.wall.replace(year=ts.wall.year - 1)
    if ts.kind in ("none", "syslog", "iso", "ctime") and (u := _UPTIME_RE.search(prefix)):
        ts.uptime_s = float(u["up"])
        if ts.kind == "none":
            ts.kind = "uptime"
    if ts.wall is None and ts.uptime_s is not None:
        if boot_time is not None:
            ts.wall = boot_time + timedelta(seconds=ts.uptime_s)
        else:
            ts.note = "uptime stamp and no boot time to convert it"
    elif ts.kind == "none":
        ts.note = "no timestamp in the line"
    if ts.wall is not None:
        ts.wall = ts.wall.astimezone(UTC)
    return ts


def _calendar(
    mon: str, day: str, hms: str, year: int, tz: tzinfo | None
) -> tuple[datetime | None, str | None]:
    month = _month(mon)
    if month is None:
        return None, f"unrecognised month name {mon!r}"
    try:
        hour, minute, second = (int(part) for part in hms.split(":"))
        naive = datetime(year, month, int(day), hour, minute, second)
    except ValueError as exc:
        return None, f"invalid date: {exc}"
    return (naive.replace(tzinfo=tz) if tz else naive.astimezone()), None


# ---- lines -------------------------------------------------------------------------------------
def _split_pid_name(rest: str) -> tuple[int | None, str | None, str]:
    pid: int | None = None
    name: str | None = None
    if m := _PID_RE.match(rest):
        raw = m["pid"]
        raw = raw.strip("'")
        pid = int(raw) if raw.lstrip("-").isdigit() and int(raw) > 0 else None
        rest = rest[m.end() :]
        if m := _NAME_RE.match(rest):
            raw_name = m["name"].strip()
            name = None if raw_name in ("<unknown>", "'<unknown>'", "") else raw_name
            rest = rest[m.end() :]
    return pid, name, rest.strip()


class LineParser:
    """Stateful parser: feed lines in order. It joins the multi-line lost-GPU report, folds a lost-GPU
    report into the XID 79 printed with it, and dates the continuation lines of a multi-line record."""

    def __init__(
        self,
        *,
        boot_time: datetime | None = None,
        now: datetime | None = None,
        tz: tzinfo | None = None,
        derive_boot: bool = False,
    ) -> None:
        """``boot_time`` dates uptime stamps; without it and with ``derive_boot`` (a log from another
        host or boot), each boot of the log is dated from its own wall-clock lines (see finish())."""
        self.boot_time, self.now, self.tz = boot_time, now, tz
        self.derive_boot = derive_boot and boot_time is None
        self._segment = 0
        self._last_uptime = -1.0
        self._anchors: dict[int, datetime] = {}  # boot segment -> boot time read from the log itself
        self.events: list[KernelEvent] = []
        self.sxids: list[SxidEvent] = []
        self.notes: list[str] = []  # what was cut or dropped (scan bounds, event cap)
        self.dropped = 0  # oldest events dropped to stay under MAX_EVENTS
        self._lost_head: tuple[str, Timestamp, str, int] | None = None  # pci, ts, raw, lines since
        self._seen = 0
        self._record: tuple[int, Timestamp] | None = None  # last dated line: (line number, its stamp)
        self._losses: dict[str, int] = {}  # GPU -> index in events of its last XID 79 / lost report
        self._last: dict[str, int] = {}  # GPU -> index in events of its last event

    def _ts(self, prefix: str) -> Timestamp:
        ts = parse_prefix(prefix, boot_time=self.boot_time, now=self.now, tz=self.tz)
        if ts.uptime_s is not None:
            if ts.uptime_s < self._last_uptime:
                self._segment += 1  # the uptime went back: the log continues after a reboot
            self._last_uptime = ts.uptime_s
            if ts.wall is not None and ts.kind in ("syslog", "iso", "ctime") and self.derive_boot:
                self._anchors.setdefault(self._segment, ts.wall - timedelta(seconds=ts.uptime_s))
            elif ts.wall is None and self.boot_time is None and ts.kind in ("uptime", "kmsg"):
                ts.note = NO_BOOT_NOTE
        if ts.wall is not None and self.now is not None and ts.wall > self.now + FUTURE_SLACK:
            ts.note = (
                f"the line's time {ts.wall.isoformat()} is in the future: the log is from another host "
                "or boot, or its clock is wrong; time left unknown"
            )
            ts.wall = None
        return ts

    def _rtc(self, line: str) -> None:
        """``rtc_cmos ...: setting system clock to <time> UTC (<epoch>)`` at boot: wall clock + uptime."""
        m = _RTC_RE.search(line)
        ts = self._ts(line[: line.find("]") + 1]) if m else None
        if m and ts is not None and ts.uptime_s is not None and self.derive_boot:
            wall = datetime.fromtimestamp(int(m["epoch"]), UTC)
            self._anchors[self._segment] = wall - timedelta(seconds=ts.uptime_s)

    def finish(self) -> LineParser:
        """Date the uptime stamps of each boot of the log from that boot's own wall-clock line."""
        for ev in self.events:
            anchor = self._anchors.get(ev.boot_segment)
            if ev.timestamp is None and ev.uptime_s is not None and anchor is not None:
                wall = anchor + timedelta(seconds=ev.uptime_s)
                if self.now is None or wall <= self.now + FUTURE_SLACK:
                    ev.timestamp = wall
                    ev.timestamp_note = (
                        f"uptime dated from the log's own wall-clock line (boot at {anchor.isoformat()})"
                    )
        return self

    def _stamp(self, prefix: str, continuation: bool) -> Timestamp:
        """A continuation line (a later line of a kmsg record, or journald's indented lines of one
        message) has no stamp of its own: it takes the stamp of its record's line just before it."""
        if (continuation or (prefix and not prefix.strip())) and self._record is not None:
            line_no, ts = self._record
            if line_no >= self._seen - 1:
                self._record = (self._seen, ts)
                return ts
        ts = self._ts(prefix)
        self._record = (self._seen, ts)
        return ts

    def feed(self, line: str | bytes) -> None:
        try:
            self._feed(line)
        except Exception:  # noqa: BLE001 - a log line must never break the analysis
            return

    def _feed(self, line: str | bytes) -> None:
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        line = line.rstrip("\r\n").replace("\\x0a", "\n")
        self._seen += 1
        if line[:1] in (" ", "\t") and self._record is not None and self._record[0] == self._seen - 1:
            self._record = (self._seen, self._record[1])  # an indented line continues the record
        if "\n" not in line:
            self._feed_one(line, line, False)
            return
        for i, part in enumerate(line.split("\n")):
            self._feed_one(part, line, i > 0)

    def _feed_one(self, line: str, raw: str, continuation: bool) -> None:
        if "system clock to" in line:
            self._rtc(line)
            return
        pos = line.find("NVRM: ")
        if pos >= 0:
            m = XID_RE.search(line, pos)
            if m:
                self._xid(m, line, self._stamp(line[: m.start()], continuation))
                return
            if one := _LOST_LINE_RE.search(line, pos):
                self._lost(one["pci"], self._stamp(line[:pos], continuation), line)
                return
            if h := _LOST_HEAD_RE.search(line, pos):
                self._lost_head = (h["pci"], self._stamp(line[:pos], continuation), raw, self._seen)
                if _LOST_TAIL not in line:
                    return
            if _LOST_TAIL in line and self._lost_head and self._seen - self._lost_head[3] <= 2:
                pci, ts, head_raw, _ = self._lost_head
                self._lost_head = None
                self._lost(pci, ts, head_raw if head_raw == raw else f"{head_raw}\n{raw}")
            return
        if "SXid" in line and (m := SXID_RE.search(line)):
            self._sxid(m, line)

    def _append(self, ev: KernelEvent) -> None:
        """Keep at most 2 x MAX_EVENTS events: past that, drop the oldest MAX_EVENTS (said in a note)."""
        ev.boot_segment = self._segment
        self.events.append(ev)
        if len(self.events) < 2 * MAX_EVENTS:
            return
        del self.events[:MAX_EVENTS]
        self.dropped += MAX_EVENTS
        self._losses = {k: i - MAX_EVENTS for k, i in self._losses.items() if i >= MAX_EVENTS}
        self._last = {k: i - MAX_EVENTS for k, i in self._last.items() if i >= MAX_EVENTS}
        self.notes[:] = [n for n in self.notes if not n.endswith("(event cap)")]
        self.notes.append(f"the {self.dropped} oldest kernel events were dropped (event cap)")

    def _recent_loss(self, key: str, ts: Timestamp) -> int | None:
        """Index of this GPU's XID 79 or lost-GPU event printed with this report: its last event, at
        about the same time (by wall clock or uptime; two undated lines count as together)."""
        index = self._losses.get(key)
        if index is None or self._last.get(key) != index:
            return None
        ev = self.events[index]
        if ev.timestamp is not None and ts.wall is not None:
            return index if abs((ev.timestamp - ts.wall).total_seconds()) <= LOST_SECONDS_APART else None
        if ev.uptime_s is not None and ts.uptime_s is not None:
            return index if abs(ev.uptime_s - ts.uptime_s) <= LOST_SECONDS_APART else None
        undated = ev.timestamp is None and ts.wall is None and ev.uptime_s is None and ts.uptime_s is None
        return index if undated else None

    def _lost(self, pci: str, ts: Timestamp, raw: str) -> None:
        """A lost-GPU report: folded into the XID 79 (or earlier report) of the same GPU next to it."""
        bus_id = normalize_bus_id(pci)
        key = bus_id or pci
        index = self._recent_loss(key, ts)
        if index is not None:
            ev = self.events[index]
            if raw not in ev.raw:
                ev.raw = f"{ev.raw}\n{raw}"
            return
        self._append(
            KernelEvent(
                kind="gpu_lost", xid=None, pci=pci, bus_id=bus_id, pid=None, process=None,
                message="GPU has fallen off the bus and is not responding (no XID line)", raw=raw,
                timestamp=ts.wall, uptime_s=ts.uptime_s, timestamp_kind=ts.kind, timestamp_note=ts.note,
            )
        )  # fmt: skip
        self._losses[key] = self._last[key] = len(self.events) - 1

    def _xid(self, m: re.Match[str], line: str, ts: Timestamp) -> None:
        pid, name, message = _split_pid_name(m["rest"])
        xid = int(m["xid"])
        caused = _CAUSED_BY_RE.search(message) if xid == 45 else None
        ev = KernelEvent(
            kind="xid", xid=xid, pci=m["pci"], bus_id=normalize_bus_id(m["pci"]), pid=pid, process=name,
            message=message, raw=line, timestamp=ts.wall, uptime_s=ts.uptime_s, timestamp_kind=ts.kind,
            timestamp_note=ts.note, caused_by_xid=int(caused[1]) if caused else None, sympathetic=caused is not None,
        )  # fmt: skip
        key = ev.bus_id or ev.pci or ""
        if xid != 79:
            self._append(ev)
            self._last[key] = len(self.events) - 1
            return
        index = self._recent_loss(key, ts)
        if index is not None and self.events[index].kind == "gpu_lost":  # the XID line names the event
            lost = self.events[index]
            ev.raw = f"{lost.raw}\n{line}"
            if ev.timestamp is None and lost.timestamp is not None:
                ev.timestamp, ev.uptime_s = lost.timestamp, lost.uptime_s
                ev.timestamp_kind, ev.timestamp_note = lost.timestamp_kind, lost.timestamp_note
            self.events[index] = ev
        else:
            self._append(ev)
            index = len(self.events) - 1
        self._losses[key] = self._last[key] = index

    def _sxid(self, m: re.Match[str], line: str) -> None:
        """Consecutive lines of one SXid (Data, Fatal/Non-fatal header, Severity) form one report."""
        rest, sxid, switch = m["rest"], int(m["sxid"]), int(m["switch"])
        head = rest.split(",", 1)[0].strip()
        is_header = head in ("Fatal", "Non-fatal")
        last = self.sxids[-1] if self.sxids else None
        same = last is not None and (last.sxid, last.switch, last.pci) == (sxid, switch, m["pci"])
        if same and last is not None and last.fatal is not None:
            # A header, or a second Data block, after a complete report starts the next report.
            same = not is_header and not (
                head.startswith("Data") and any(d.startswith("Data") for d in last.details)
            )
        if same and last is not None:
            if is_header:  # a Data line came first: the header names the report
                last.details.append(last.message)
                last.message, last.raw = rest, line
                last.fatal = head == "Fatal"
                last.link = _link(rest)
            else:
                last.details.append(rest)
            return
        ts = self._stamp(line[: m.start()], False)
        if len(self.sxids) >= 2 * MAX_EVENTS:
            del self.sxids[:MAX_EVENTS]
        self.sxids.append(
            SxidEvent(
                sxid=sxid, switch=switch, pci=m["pci"], bus_id=normalize_bus_id(m["pci"]),
                fatal=(head == "Fatal") if is_header else None, link=_link(rest) if is_header else None,
                message=rest, raw=line, timestamp=ts.wall, timestamp_kind=ts.kind,
            )
        )  # fmt: skip


def _link(text: str) -> int | None:
    m = re.search(r"Link (-?\d+)", text)
    return int(m[1]) if m else None


def parse_lines(
    lines: Iterable[str | bytes],
    *,
    boot_time: datetime | None = None,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> LineParser:
    """Parse an ordered sequence of kernel log lines; returns the parser holding events and sxids."""
    parser = LineParser(boot_time=boot_time, now=now, tz=tz)
    for line in lines:
        parser.feed(line)
    return parser.finish()
