"""Kernel log sources: /dev/kmsg without hanging, journalctl/dmesg fallbacks, boot-time conversion."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k8s_gpu_mcp.xid.sources import journal_argv, read_boot_time, read_kernel_log, read_kmsg

BTIME = 1_790_000_000
BOOT = datetime.fromtimestamp(BTIME, UTC)
KMSG_XID = "3,812,3600000001,-;NVRM: Xid (PCI:0000:5d:00): 48, pid=4242, name=python3, DBE"


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    root.mkdir()
    (root / "stat").write_text(f"cpu  1 2 3\nintr 0\nbtime {BTIME}\nprocesses 10\n")
    return root


def test_boot_time_from_proc_stat(proc: Path, tmp_path: Path) -> None:
    assert read_boot_time(proc) == BOOT
    assert read_boot_time(tmp_path / "missing") is None


def test_kmsg_pipe_stops_at_eagain_without_hanging() -> None:
    r, w = os.pipe()
    os.write(w, (KMSG_XID + "\n SUBSYSTEM=pci\n 6,813,3600000002,-;eth0: up\n").encode())
    path = f"/proc/self/fd/{r}"
    done: list[list[str]] = []
    t = threading.Thread(target=lambda: done.append(read_kmsg(path)))
    t.start()
    t.join(5)
    os.close(w)
    os.close(r)
    assert done, "read_kmsg blocked on an empty pipe"
    assert done[0] == [KMSG_XID]  # dictionary lines (leading space) dropped


def test_kmsg_source_converts_usec_with_boot_time(tmp_path: Path, proc: Path) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_text(KMSG_XID + "\n6,813,3600000002,-;eth0: up\n")
    log = read_kernel_log("kmsg", kmsg_path=kmsg, proc_root=proc)
    assert log.source == "kmsg"
    (ev,) = log.parser.events
    assert ev.timestamp == BOOT + timedelta(seconds=3600.000001)
    assert ev.timestamp_kind == "kmsg"


def _fake_exe(bindir: Path, name: str, body: str) -> None:
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_auto_falls_back_to_journalctl(tmp_path: Path, proc: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_exe(
        bindir,
        "journalctl",
        'echo "$@" > "$0.args"\n'
        "echo '2026-11-21T10:00:00+0000 node-5 kernel: NVRM: Xid (PCI:0000:ab:00): 79, pid=1, name=a, GPU has fallen off the bus.'\n",
    )
    since = datetime(2026, 11, 20, tzinfo=UTC)
    log = read_kernel_log(
        "auto", kmsg_path=tmp_path / "no-kmsg", proc_root=proc, env={"PATH": str(bindir)}, since=since
    )
    assert log.source == "journal"
    assert "kmsg" in log.unavailable
    (ev,) = log.parser.events
    assert ev.xid == 79 and ev.timestamp == datetime(2026, 11, 21, 10, tzinfo=UTC)
    args = (bindir / "journalctl.args").read_text().split()
    assert args == journal_argv(since)[1:]


def test_auto_falls_back_to_dmesg_when_journalctl_fails(tmp_path: Path, proc: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_exe(bindir, "journalctl", "exit 1\n")
    _fake_exe(
        bindir, "dmesg", "echo '[ 3600.000001] NVRM: Xid (PCI:0000:5d:00): 48, pid=4242, name=python3, DBE'\n"
    )
    log = read_kernel_log("auto", kmsg_path=tmp_path / "no-kmsg", proc_root=proc, env={"PATH": str(bindir)})
    assert log.source == "dmesg"
    assert set(log.unavailable) == {"kmsg", "journal"}
    (ev,) = log.parser.events
    assert ev.timestamp == BOOT + timedelta(seconds=3600.000001)


def test_no_source_available(tmp_path: Path, proc: Path) -> None:
    log = read_kernel_log("auto", kmsg_path=tmp_path / "no-kmsg", proc_root=proc, env={"PATH": str(tmp_path)})
    assert log.source is None and set(log.unavailable) == {"kmsg", "journal", "dmesg"}


def test_file_and_scenario_sources(tmp_path: Path, proc: Path) -> None:
    f = tmp_path / "kern.log"
    f.write_text("[ 1.0] eth0: up\n[ 3600.0] NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=a, x\n")
    assert read_kernel_log(str(f), proc_root=proc).parser.events[0].xid == 13
    log = read_kernel_log(
        "scenario", lines=["NVRM: Xid (PCI:0000:18:00): 31, pid=1, name=a, x"], proc_root=proc
    )
    assert (log.source, log.parser.events[0].xid) == ("scenario", 31)


def test_missing_file_is_an_os_error(proc: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_kernel_log("/no/such/file", proc_root=proc)


XID13 = "NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=a, Graphics SM Warp Exception on (GPC 1, TPC 0, SM 0)"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _file(tmp_path: Path, *lines: str) -> str:
    f = tmp_path / "other-host.log"
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def test_file_uptime_is_not_dated_with_this_machines_boot(tmp_path: Path, proc: Path) -> None:
    """A file may come from another host or boot: /proc/stat's btime must not date it."""
    path = _file(tmp_path, "[ 1.0] eth0: up", f"[ 3600.5] {XID13}")
    (ev,) = read_kernel_log(path, proc_root=proc, now=NOW).parser.events
    assert ev.timestamp is None and ev.uptime_s == 3600.5
    assert "--boot-time" in ev.timestamp_note


def test_file_uptime_dated_with_the_operators_boot_time(tmp_path: Path, proc: Path) -> None:
    boot = datetime(2026, 11, 20, tzinfo=UTC)
    path = _file(tmp_path, f"[ 3600.5] {XID13}")
    (ev,) = read_kernel_log(path, proc_root=proc, log_boot_time=boot, now=NOW).parser.events
    assert ev.timestamp == boot + timedelta(seconds=3600.5)


def test_file_uptime_dated_from_its_own_wall_clock_line(tmp_path: Path, proc: Path) -> None:
    """kern.log style lines carry both a syslog time and the uptime: they give the boot time of the log."""
    path = _file(
        tmp_path,
        f"[ 3600.5] {XID13}",
        "Nov 21 10:00:00 gpu-7 kernel: [ 7200.000000] NVRM: Xid (PCI:0000:18:00): 31, pid=2, name=b, x",
    )
    first, second = read_kernel_log(path, proc_root=proc, now=NOW).parser.events
    local_boot = second.timestamp - timedelta(seconds=7200)
    assert first.timestamp == local_boot + timedelta(seconds=3600.5)
    assert "wall-clock line" in first.timestamp_note


def test_file_uptime_dated_from_the_rtc_line_of_its_boot_only(tmp_path: Path, proc: Path) -> None:
    path = _file(
        tmp_path,
        "[    1.500000] rtc_cmos 00:00: setting system clock to 2026-11-21T09:00:01 UTC (1795251601)",
        f"[ 3600.5] {XID13}",
        "[    0.000000] Linux version 6.8.0 (a reboot: the uptime goes back)",
        f"[   99.0] {XID13}",
    )
    dated, after_reboot = read_kernel_log(
        path, proc_root=proc, now=datetime(2026, 11, 21, 12, tzinfo=UTC)
    ).parser.events
    boot = datetime.fromtimestamp(1795251601, UTC) - timedelta(seconds=1.5)
    assert dated.timestamp == boot + timedelta(seconds=3600.5)
    assert after_reboot.timestamp is None and after_reboot.uptime_s == 99.0


def test_a_time_in_the_future_is_never_reported(tmp_path: Path, proc: Path) -> None:
    path = _file(tmp_path, f"2027-06-01T00:00:00+00:00 gpu-7 kernel: {XID13}")
    (ev,) = read_kernel_log(path, proc_root=proc, now=NOW).parser.events
    assert ev.timestamp is None and "future" in ev.timestamp_note
    boot = datetime(2026, 11, 21, 11, 59, tzinfo=UTC)  # a wrong boot time pushes uptime past now
    (ev,) = read_kernel_log(_file(tmp_path, f"[ 3600.5] {XID13}"), log_boot_time=boot, now=NOW).parser.events
    assert ev.timestamp is None and "future" in ev.timestamp_note


def test_parse_boot_time_forms() -> None:
    from k8s_gpu_mcp.xid.sources import parse_boot_time

    assert parse_boot_time("2026-11-21T09:00:00Z") == datetime(2026, 11, 21, 9, tzinfo=UTC)
    assert parse_boot_time("1795251601") == datetime.fromtimestamp(1795251601, UTC)
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_boot_time("yesterday")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_boot_time("9" * 400)
