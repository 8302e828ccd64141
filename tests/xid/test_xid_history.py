"""XID history across boots: the journal's earlier boots (a fake journalctl on PATH) and rotated
kern.log files in a temporary host root. The story of issue 19: XID 48 in the previous boot, a
reboot, a clean current boot, and the XID 48 still shown with the boot that logged it."""

from __future__ import annotations

import gzip
import json
import os
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k8s_gpu_mcp.xid.analyze import analyze
from k8s_gpu_mcp.xid.history import (
    boot_argv,
    list_boots_argv,
    normalize_boot_id,
    parse_list_boots,
    reach_note,
    read_boot_id,
    read_history,
    rotated_logs,
)
from k8s_gpu_mcp.xid.scan import scan_gzip

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PREV = "1f0c2a7e9b8d4c3aa5e6f7081920a3b4"  # the boot that hit XID 48
CUR = "7e1d9c0b2a3f4e5d8c7b6a5948372615"  # the clean boot after the reboot
OLD = "0a0b0c0d0e0f00112233445566778899"  # a boot that ended long before the window
PREV_START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PREV_LAST = datetime(2026, 12, 1, 1, 59, tzinfo=UTC)
CUR_START = datetime(2026, 12, 1, 2, 5, tzinfo=UTC)
BUS = "0000:53:00"
XID48 = (
    f"NVRM: Xid (PCI:{BUS}): 48, pid=4242, name=python, An uncorrectable double bit error (DBE) has "
    "been detected on GPU in the framebuffer at partition 6, subpartition 0."
)
GPUS = [{"index": 0, "uuid": "GPU-0", "bus_id": f"0000{BUS}.0"}]

FAKE_JOURNALCTL = """#!{python}
import json, sys
from pathlib import Path
here = Path(__file__).parent
args = sys.argv[1:]
with open(here / "journalctl.calls", "a") as f:
    f.write(json.dumps(args) + "\\n")
boots = json.loads((here / "boots.json").read_text())
if "--list-boots" in args:
    print(json.dumps(boots) if (here / "json-ok").exists() else (here / "boots.txt").read_text(), end="")
    sys.exit(0)
boot = args[args.index("-b") + 1] if "-b" in args else boots[-1]["boot_id"]
if (here / f"fail-{{boot}}").exists():
    sys.exit(1)
log = here / f"boot-{{boot}}.log"
print(log.read_text() if log.exists() else "", end="")
"""


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+0000")


@pytest.fixture
def journal(tmp_path: Path) -> dict[str, Path]:
    """A fake journalctl (JSON --list-boots) over three boots, a host root with var/log/journal, and
    a /proc whose boot id and btime are the current boot's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "journalctl"
    exe.write_text(FAKE_JOURNALCTL.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    (bindir / "json-ok").touch()
    boots = [
        {"index": -2, "boot_id": OLD, "first_entry": _us(NOW - timedelta(days=9)),
         "last_entry": _us(NOW - timedelta(days=8))},
        {"index": -1, "boot_id": PREV, "first_entry": _us(PREV_START), "last_entry": _us(PREV_LAST)},
        {"index": 0, "boot_id": CUR, "first_entry": _us(CUR_START), "last_entry": _us(NOW)},
    ]  # fmt: skip
    (bindir / "boots.json").write_text(json.dumps(boots))
    (bindir / f"boot-{PREV}.log").write_text(
        f"{_iso(PREV_START)} node-7 kernel: Linux version 6.8.0\n"
        f"{_iso(datetime(2026, 12, 1, 1, 30, tzinfo=UTC))} node-7 kernel: {XID48}\n"
        f"{_iso(PREV_LAST)} node-7 kernel: reboot: Restarting system\n"
    )
    (bindir / f"boot-{CUR}.log").write_text(f"{_iso(CUR_START)} node-7 kernel: Linux version 6.8.0\n")
    (bindir / f"boot-{OLD}.log").write_text(f"{_iso(NOW - timedelta(days=9))} node-7 kernel: {XID48}\n")
    host = tmp_path / "host"
    (host / "var/log/journal").mkdir(parents=True)
    proc = tmp_path / "proc"
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/boot_id").write_text("7e1d9c0b-2a3f-4e5d-8c7b-6a5948372615\n")
    (proc / "stat").write_text(f"cpu 1 2 3\nbtime {int(CUR_START.timestamp())}\n")
    return {"bin": bindir, "host": host, "proc": proc}


def _calls(bindir: Path) -> list[list[str]]:
    return [json.loads(line) for line in (bindir / "journalctl.calls").read_text().splitlines()]


def test_xid48_of_the_previous_boot_is_shown_with_its_boot(journal: dict[str, Path]) -> None:
    since = NOW - timedelta(hours=24)
    history = read_history(
        journal["host"], since=since, now=NOW, env={"PATH": str(journal["bin"])},
        current_id=read_boot_id(journal["proc"]), current_start=CUR_START,
    )  # fmt: skip
    (ev,) = history.events
    assert (ev.xid, ev.source, ev.boot, ev.boot_id, ev.boot_started) == (
        48,
        "journal",
        "previous",
        PREV,
        PREV_START,
    )
    assert history.covered_since == since  # the older boot ended before the window: it is reached
    assert reach_note(history.covered_since, since, history.sources) is None
    assert [(b.boot_id, b.current) for b in history.boots] == [(OLD, False), (PREV, False), (CUR, True)]
    calls = _calls(journal["bin"])
    assert calls[0] == list_boots_argv(str(journal["host"] / "var/log/journal"))[1:]
    # the boots that reach into the window, newest first; the old boot (ended 8 days ago) is not read
    assert [c[c.index("-b") + 1] for c in calls[1:]] == [CUR, PREV]
    assert calls[2] == boot_argv(PREV, since, str(journal["host"] / "var/log/journal"))[1:]

    result = analyze(history.events, GPUS, since="24h", now=NOW, covered_since=history.covered_since)
    (shown,) = result.events
    assert (shown.xid, shown.index, shown.boot, shown.boot_id) == (48, 0, "previous", PREV)
    assert result.status != "healthy" and "XID 48" in result.action


def test_the_live_journal_boot_is_not_read_twice(journal: dict[str, Path]) -> None:
    history = read_history(
        journal["host"], since=NOW - timedelta(hours=24), now=NOW, env={"PATH": str(journal["bin"])},
        current_id=CUR, current_start=CUR_START, skip_current=True,
    )  # fmt: skip
    assert [c[c.index("-b") + 1] for c in _calls(journal["bin"])[1:]] == [PREV]
    assert [e.boot for e in history.events] == ["previous"]


def test_a_boot_that_cannot_be_read_is_named_and_the_window_is_not_called_covered(
    journal: dict[str, Path],
) -> None:
    (journal["bin"] / f"fail-{PREV}").touch()
    since = NOW - timedelta(hours=24)
    history = read_history(
        journal["host"], since=since, now=NOW, env={"PATH": str(journal["bin"])}, current_id=CUR,
        current_start=CUR_START,
    )  # fmt: skip
    assert history.events == []
    assert history.unavailable[f"journal.boot {PREV}"] == "RuntimeError: journalctl exited with status 1"
    assert history.covered_since == CUR_START  # the boot read; the one before it is a gap
    note = reach_note(history.covered_since, since, history.sources)
    assert note is not None and "reaches back only to 2026-12-01T02:05:00+00:00" in note


def test_a_window_older_than_the_journal_says_how_far_it_reaches(journal: dict[str, Path]) -> None:
    since = NOW - timedelta(days=30)
    history = read_history(
        journal["host"], since=since, now=NOW, env={"PATH": str(journal["bin"])}, current_id=CUR,
        current_start=CUR_START,
    )  # fmt: skip
    assert history.covered_since == NOW - timedelta(days=9)  # the oldest boot's first entry
    assert sorted(e.boot_id for e in history.events) == sorted([OLD, PREV])
    note = reach_note(history.covered_since, since, history.sources)
    assert note is not None and "reaches back only to 2026-11-22T10:00:00+00:00" in note
    assert "kern.log" in history.unavailable  # and the files were looked for, since the journal fell short


def test_list_boots_text_table_of_older_systemd() -> None:
    old_style = (
        f"-1 {PREV} Mon 2026-11-30 08:00:00 UTC—Tue 2026-12-01 01:59:00 UTC\n"
        f" 0 {CUR} Tue 2026-12-01 02:05:00 UTC—Tue 2026-12-01 10:00:00 UTC\n"
    )
    new_style = (
        "IDX BOOT ID                          FIRST ENTRY                 LAST ENTRY\n"
        f" -1 {PREV} Mon 2026-11-30 08:00:00 UTC Tue 2026-12-01 01:59:00 UTC\n"
        f"  0 {CUR} Tue 2026-12-01 02:05:00 UTC Tue 2026-12-01 10:00:00 UTC\n"
    )
    for text in (old_style, new_style):
        boots = parse_list_boots(text)
        assert [(b.index, b.boot_id, b.started, b.last) for b in boots] == [
            (-1, PREV, PREV_START, PREV_LAST),
            (0, CUR, CUR_START, NOW),
        ]
    # a local time zone other than UTC is not guessed at
    (boot,) = parse_list_boots(f" 0 {CUR} Tue 2026-12-01 02:05:00 CET—Tue 2026-12-01 10:00:00 CET\n")
    assert boot.started is None and boot.last is None
    assert parse_list_boots("No journal files were found.\n") == []
    assert normalize_boot_id("7E1D9C0B-2A3F-4E5D-8C7B-6A5948372615") == CUR and normalize_boot_id("x") is None


def test_text_list_boots_through_the_fake(journal: dict[str, Path]) -> None:
    (journal["bin"] / "json-ok").unlink()
    (journal["bin"] / "boots.txt").write_text(
        f"-1 {PREV} Mon 2026-11-30 08:00:00 UTC—Tue 2026-12-01 01:59:00 UTC\n"
        f" 0 {CUR} Tue 2026-12-01 02:05:00 UTC—Tue 2026-12-01 10:00:00 UTC\n"
    )
    history = read_history(
        journal["host"], since=NOW - timedelta(hours=24), now=NOW, env={"PATH": str(journal["bin"])},
        current_id=CUR, current_start=CUR_START,
    )  # fmt: skip
    assert [(e.xid, e.boot, e.boot_id) for e in history.events] == [(48, "previous", PREV)]


# ---- rotated kern.log ------------------------------------------------------------------------------
def _syslog(t: datetime, uptime: float, msg: str) -> str:
    return f"{t.strftime('%b %e %H:%M:%S')} node-7 kernel: [{uptime:12.6f}] {msg}\n"


@pytest.fixture
def kern_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """kern.log (current boot, clean), kern.log.1 (the previous boot, XID 48, then the reboot),
    kern.log.2.gz (three days ago, an XID 13): syslog lines with the kernel's uptime stamps."""
    monkeypatch.setenv("TZ", "UTC")
    host = tmp_path / "host"
    logs = host / "var/log"
    logs.mkdir(parents=True)
    xid_at = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    (logs / "kern.log").write_text(
        _syslog(CUR_START + timedelta(seconds=1), 1.0, "Linux version 6.8.0")
        + _syslog(CUR_START + timedelta(seconds=5), 5.0, "nvidia: module loaded")
    )
    (logs / "kern.log.1").write_text(
        _syslog(PREV_START + timedelta(seconds=1), 1.0, "Linux version 6.8.0")
        + _syslog(xid_at, (xid_at - PREV_START).total_seconds(), XID48)
        + _syslog(PREV_LAST, (PREV_LAST - PREV_START).total_seconds(), "reboot: Restarting system")
    )
    old = NOW - timedelta(days=3)
    with gzip.open(logs / "kern.log.2.gz", "wt") as f:
        f.write(_syslog(old, 100.0, f"NVRM: Xid (PCI:{BUS}): 13, pid=1, name=a, Graphics Exception"))
    for name, when in (("kern.log", NOW), ("kern.log.1", PREV_LAST), ("kern.log.2.gz", old)):
        os.utime(logs / name, (when.timestamp(), when.timestamp()))
    (logs / "kern.log.3.gz").write_bytes(b"not gzip")
    os.utime(logs / "kern.log.3.gz", ((old - timedelta(days=3)).timestamp(),) * 2)
    return host


def test_rotated_files_are_listed_newest_first(kern_logs: Path) -> None:
    names = [p.name for p in rotated_logs(kern_logs / "var/log")]
    assert names == ["kern.log", "kern.log.1", "kern.log.2.gz", "kern.log.3.gz"]


def test_kern_log_history_without_a_journal(kern_logs: Path, tmp_path: Path) -> None:
    since = NOW - timedelta(hours=24)
    history = read_history(
        kern_logs, since=since, now=NOW, env={"PATH": str(tmp_path / "nobin")}, current_id=CUR,
        current_start=CUR_START,
    )  # fmt: skip
    assert "journal" in history.unavailable and history.sources == ["kern.log"]
    (ev,) = history.events  # kern.log.2.gz ends before the window: neither it nor older files are read
    assert (ev.xid, ev.source, ev.boot, ev.boot_id) == (48, "kern.log", "previous", None)
    assert ev.boot_started == PREV_START  # its time minus its uptime
    assert history.covered_since == PREV_START + timedelta(seconds=1)  # kern.log.1's first line
    assert reach_note(history.covered_since, since, history.sources) is None  # it starts before the window


def test_kern_log_reaches_back_through_gzip_and_says_what_it_could_not_read(
    kern_logs: Path, tmp_path: Path
) -> None:
    since = NOW - timedelta(days=7)
    history = read_history(
        kern_logs, since=since, now=NOW, env={"PATH": str(tmp_path / "nobin")}, current_id=CUR,
        current_start=CUR_START,
    )  # fmt: skip
    assert sorted(e.xid for e in history.events if e.xid) == [13, 48]
    assert history.covered_since == NOW - timedelta(days=3)  # the oldest readable file's first line
    note = reach_note(history.covered_since, since, history.sources)
    assert note is not None and "reaches back only to 2026-11-28T10:00:00+00:00" in note
    assert "file kern.log.3.gz" in history.unavailable  # unreadable, named, not silently skipped
    current = [b for b in history.boots if b.current]
    assert [(b.boot_id, b.started) for b in current] == [(CUR, CUR_START)]


def test_gzip_scan_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "kern.log.9.gz"
    line = f"Dec  1 01:30:00 node-7 kernel: [ 1.0] {XID48}\n".encode()
    with gzip.open(path, "wb") as f:
        f.write(line * 2 + b"x" * (4 << 20) + line)
    parser = scan_gzip(path, max_bytes=1 << 20, now=NOW)
    assert len(parser.events) == 2  # the XID past the first MiB is not read
    assert any("only its first 1 MiB" in n for n in parser.notes)


# ---- through the tool ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_analyze_xid_errors_after_a_reboot_shows_the_previous_boot_xid48(
    journal: dict[str, Path], make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent as on a real node (the mock GPUs stand in for NVML only): the current boot's journal
    is clean, the previous boot's has XID 48 on GPU 0; a 7-day window shows it with its boot, and
    says the journal does not reach back that far."""
    from tests.conftest import call

    probe = make_app()
    bus = probe.backend.adapter.gpus()[0].short_bus_id
    log = journal["bin"] / f"boot-{PREV}.log"
    log.write_text(log.read_text().replace(BUS, bus))
    monkeypatch.setenv("PATH", f"{journal['bin']}{os.pathsep}{os.environ['PATH']}")
    app = make_app(host_root=str(journal["host"]), proc_root=str(journal["proc"]))
    app.backend.mock = None  # read this "host"'s kernel history, not the scenario
    data = (
        await call(
            app,
            "analyze_xid_errors",
            {"source": "journal", "since": "2026-11-25T00:00:00Z", "detail": "full"},
        )
    ).structured_content
    (ev,) = [e for e in data["events"] if e["xid"] == 48]
    assert (ev["index"], ev["boot"], ev["boot_id"], ev["sources"]) == (0, "previous", PREV, ["journal"])
    assert any(p["index"] == 0 and "XID 48" in p["reason"] for p in data["problems"]), data["problems"]
    assert data["status"] != "healthy"
    assert {b["boot_id"]: b["current"] for b in data["boots"]} == {OLD: False, PREV: False, CUR: True}
    assert data["covered_since"] == "2026-11-25T00:00:00Z" and not any(
        "reaches back" in n for n in data["notes"]
    )

    older = (
        await call(app, "analyze_xid_errors", {"source": "journal", "since": "2026-11-01T00:00:00Z"})
    ).structured_content
    assert older["covered_since"] == "2026-11-22T10:00:00Z"  # the journal's oldest boot
    assert any("reaches back only to 2026-11-22T10:00:00+00:00" in n for n in older["notes"]), older["notes"]


@pytest.mark.anyio
async def test_the_node_timeline_shows_the_reboot_between_the_xid48_and_now(
    journal: dict[str, Path], make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import call

    monkeypatch.setenv("PATH", f"{journal['bin']}{os.pathsep}{os.environ['PATH']}")
    app = make_app(host_root=str(journal["host"]), proc_root=str(journal["proc"]))
    bus = app.backend.adapter.gpus()[0].short_bus_id
    log = journal["bin"] / f"boot-{PREV}.log"
    log.write_text(log.read_text().replace(BUS, bus))
    app.backend.mock = None
    data = (
        await call(app, "get_node_timeline", {"since": "2026-11-25T00:00:00Z", "limit": 100})
    ).structured_content
    story = [
        (e["time"], e["kind"], e["gpu"])
        for e in data["entries"]
        if e["kind"] in ("boot", "boot_ended", "xid")
    ]
    assert story == [
        ("2026-11-30T08:00:00Z", "boot", None),  # the previous boot, from the journal
        ("2026-12-01T01:30:00Z", "xid", 0),
        ("2026-12-01T01:59:00Z", "boot_ended", None),  # its journal's last entry: the reboot came after
        ("2026-12-01T02:05:00Z", "boot", None),  # this boot, from /proc/stat
    ], data["entries"]
    xid = next(e for e in data["entries"] if e["kind"] == "xid")
    assert xid["source"] == "kernel-log" and f"[previous boot {PREV[:12]}]" in xid["meaning"]

    # get_gpu_health asks about now: the XID of the boot before the reboot is not a current finding
    health = (await call(app, "get_gpu_health", {"detail": "full"})).structured_content
    assert "XID 48" not in json.dumps(health)


def test_a_vacuumed_journal_is_completed_by_kern_log_and_the_same_xid_counts_once(
    journal: dict[str, Path], tmp_path: Path
) -> None:
    """The journal kept only the end of the previous boot; kern.log.1 (RFC 3339, no uptime stamps, as
    rsyslog writes on newer distributions) goes further back. The XID 48 in both is one event, with
    the journal's boot id (the file line falls in that boot's time range)."""
    boots = json.loads((journal["bin"] / "boots.json").read_text())
    vacuumed_from = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    boots = [b for b in boots if b["boot_id"] != OLD]
    boots[0]["first_entry"] = _us(vacuumed_from)
    (journal["bin"] / "boots.json").write_text(json.dumps(boots))
    logs = journal["host"] / "var/log"
    xid_at = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    (logs / "kern.log.1").write_text(
        f"{PREV_START.isoformat()} node-7 kernel: Linux version 6.8.0\n"
        f"{xid_at.isoformat()} node-7 kernel: {XID48}\n"
    )
    os.utime(logs / "kern.log.1", (PREV_LAST.timestamp(),) * 2)
    since = NOW - timedelta(hours=24)
    history = read_history(
        journal["host"], since=since, now=NOW, env={"PATH": str(journal["bin"])}, current_id=CUR,
        current_start=CUR_START,
    )  # fmt: skip
    assert history.sources == ["journal", "kern.log"]
    assert sorted((e.source, e.boot_id) for e in history.events) == [("journal", PREV), ("kern.log", PREV)]
    assert history.covered_since == PREV_START  # kern.log.1's first line, before the window
    result = analyze(history.events, GPUS, since="24h", now=NOW, covered_since=history.covered_since)
    (one,) = result.events
    assert sorted(one.sources) == ["journal", "kern.log"] and one.boot_id == PREV
    assert result.xids[0].count == 1 and result.xids[0].boots == ["previous"]


def test_in_a_pod_the_hosts_own_journalctl_reads_the_host_journal(
    journal: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image has no journalctl, and the host's matches its journal's format: with the host at
    host_root and root, the history runs `chroot HOST journalctl` on the host's default journal."""
    from k8s_gpu_mcp.xid.history import JOURNALCTL, journal_command

    host = journal["host"]
    assert journal_command(host) == JOURNALCTL  # the host root has no journalctl
    (host / "usr/bin").mkdir(parents=True)
    (host / "usr/bin/journalctl").write_text("")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert journal_command(host) == ("chroot", str(host), "journalctl")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert journal_command(host) == JOURNALCTL, "chroot needs root"
    assert journal_command("/") == JOURNALCTL, "on the host itself, its journalctl is on PATH"

    monkeypatch.setattr("os.geteuid", lambda: 0)
    fake_chroot = journal["bin"] / "chroot"  # drops the root and runs the fake journalctl
    fake_chroot.write_text('#!/bin/sh\nshift\nexec "$@"\n')
    fake_chroot.chmod(0o755)
    since = NOW - timedelta(hours=24)
    history = read_history(host, since=since, now=NOW, env={"PATH": str(journal["bin"])},
                           current_id=read_boot_id(journal["proc"]), current_start=CUR_START)  # fmt: skip
    (ev,) = history.events
    assert (ev.xid, ev.boot, ev.boot_id) == (48, "previous", PREV)
    calls = _calls(journal["bin"])
    assert "-D" not in calls[0], "the host's journalctl finds the host's journal itself"
