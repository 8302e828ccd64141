"""Parser cases of issue 15: lost-GPU forms, one journald record, quoted pids, continuation stamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from k8s_gpu_mcp.xid.analyze import analyze
from k8s_gpu_mcp.xid.parse import parse_lines
from k8s_gpu_mcp.xid.scan import scan_bytes

BOOT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ONE_LINE = "[ 1843.308150] NVRM: GPU 0000:29:00.0: GPU has fallen off the bus."
XID79 = "[ 1843.308145] NVRM: Xid (PCI:0000:29:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
GPU = [{"index": 0, "uuid": "GPU-a", "bus_id": "00000000:29:00.0"}]
# journalctl -o short-iso prints one multi-line kernel message with its continuation lines indented
JOURNAL_RECORD = [
    "2026-11-21T10:00:00+0000 gpu-node-7 kernel: NVRM: The NVIDIA GPU 0000:29:00.0",
    "                                            NVRM: (PCI ID: 10de:2330) installed in this system has",
    "                                            NVRM: fallen off the bus and is not responding to commands.",
    "                                            NVRM: Xid (PCI:0000:29:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
]


def _both(lines: list[str]) -> list:
    """Parse line by line and through the scanner (small and large chunks): the same events."""
    direct = parse_lines(lines, boot_time=BOOT, now=NOW).events
    text = ("noise line without the keyword\n" * 3 + "\n".join(lines) + "\n").encode()
    for chunk in (64, 1 << 20):
        scanned = scan_bytes(text, boot_time=BOOT, now=NOW, chunk_size=chunk).events
        assert [(e.kind, e.xid, e.bus_id, e.timestamp, e.raw) for e in scanned] == [
            (e.kind, e.xid, e.bus_id, e.timestamp, e.raw) for e in direct
        ], chunk
    return direct


def test_one_line_lost_gpu_alone_is_a_lost_gpu() -> None:
    (ev,) = _both([ONE_LINE])
    assert (ev.kind, ev.xid, ev.bus_id, ev.uptime_s) == ("gpu_lost", None, "00000000:29:00.0", 1843.30815)
    (out,) = analyze([ev], GPU, since=None, now=NOW).events
    assert (out.xid, out.kind, out.index, out.catalog_severity) == (79, "gpu_lost", 0, "Fatal")


@pytest.mark.parametrize("order", [(XID79, ONE_LINE), (ONE_LINE, XID79)])
def test_one_line_lost_gpu_merges_with_its_xid79(order: tuple[str, str]) -> None:
    (ev,) = _both(list(order))
    assert (ev.kind, ev.xid) == ("xid", 79)
    assert ONE_LINE in ev.raw and XID79 in ev.raw


def test_lost_gpu_on_another_gpu_is_not_merged() -> None:
    other = ONE_LINE.replace("0000:29:00.0", "0000:3b:00.0")
    assert [(e.kind, e.bus_id) for e in _both([XID79, other])] == [
        ("xid", "00000000:29:00.0"),
        ("gpu_lost", "00000000:3B:00.0"),
    ]


def test_lost_gpu_much_later_is_a_second_loss() -> None:
    later = ONE_LINE.replace("1843.308150", "9843.308150")
    assert [e.kind for e in _both([XID79, later])] == ["xid", "gpu_lost"]


def test_journald_record_of_lost_block_and_xid79_is_one_event_with_the_record_time() -> None:
    (ev,) = _both(JOURNAL_RECORD)
    assert (ev.kind, ev.xid, ev.bus_id) == ("xid", 79, "00000000:29:00.0")
    assert ev.timestamp == datetime(2026, 11, 21, 10, 0, tzinfo=UTC) and ev.timestamp_kind == "iso"
    assert ev.raw.splitlines()[0] == JOURNAL_RECORD[0] and ev.raw.splitlines()[-1] == JOURNAL_RECORD[-1]


def test_kmsg_record_with_embedded_newlines_dates_every_part() -> None:
    record = "3,1234,1843308145,-;NVRM: The NVIDIA GPU 0000:29:00.0\\x0aNVRM: fallen off the bus and is not responding to commands.\\x0aNVRM: Xid (PCI:0000:29:00): 79, GPU has fallen off the bus."
    (ev,) = parse_lines([record], boot_time=BOOT, now=NOW).events
    assert (ev.kind, ev.xid, ev.timestamp_kind, ev.uptime_s) == ("xid", 79, "kmsg", 1843.308145)


@pytest.mark.parametrize(
    ("text", "pid", "name"),
    [
        ("pid='1234', name=python3, Ch 00000008", 1234, "python3"),
        ("pid=1234, name=python3, Ch 00000008", 1234, "python3"),
        ("pid='<unknown>', name=<unknown>, Ch 00000008", None, None),
        ("pid='0', name=python3, Ch 00000008", None, "python3"),
    ],
)
def test_pid_quoted_or_not(text: str, pid: int | None, name: str | None) -> None:
    (ev,) = parse_lines([f"[ 10.0] NVRM: Xid (PCI:0000:29:00): 31, {text}"]).events
    assert (ev.pid, ev.process) == (pid, name)
