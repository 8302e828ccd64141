"""The chunked scanner finds exactly what a line-by-line parse finds; the parser never raises."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_gpu_mcp.xid.parse import parse_lines
from k8s_gpu_mcp.xid.scan import scan_bytes, scan_stream

INTERESTING = [
    "[ {t}] NVRM: Xid (PCI:0000:3b:00): 48, pid={n}, name=python3, DBE",
    "[ {t}] nvidia-nvswitch2: SXid (PCI:0000:05:00.0): 20034, Fatal, Link 30 LTSSM Fault Up",
    "[ {t}] NVRM: The NVIDIA GPU 0000:b3:00.0",
    "[ {t}] NVRM: (PCI ID: 10de:26b5) installed in this system has",
    "[ {t}] NVRM: fallen off the bus and is not responding to commands.",
    "[ {t}] NVRM: Xid (PCI:0000:ab:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    "[ {t}] XFS (nvme1n1): Mounting V5 Filesystem",
    "[ {t}] eth0: renamed from veth{n}",
]


def _log(n: int, seed: int) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if rng.random() < 0.1 and i + 3 < n:
            out.extend(INTERESTING[2:5])
        out.append(rng.choice(INTERESTING).format(t=f"{i:.6f}", n=i))
    return "\n".join(out) + ("\n" if seed % 2 else "")


def _key(p):
    return [(e.kind, e.xid, e.bus_id, e.raw) for e in p.events], [
        (s.sxid, s.message, s.details) for s in p.sxids
    ]


def test_scanner_matches_line_by_line_for_any_chunk_size() -> None:
    for seed in range(4):
        text = _log(300, seed)
        expected = _key(parse_lines(text.splitlines()))
        for chunk in (32, 64, 100, 257, 4096, 1 << 20):
            assert _key(scan_bytes(text.encode(), chunk_size=chunk)) == expected, (seed, chunk)


def test_x_heavy_log_switches_anchor_and_still_finds_everything() -> None:
    text = "XXXX XFS X11\n" * 20000 + "NVRM: Xid (PCI:0000:3b:00): 48, pid=1, name=a, DBE\n" + "X\n" * 10
    assert [e.xid for e in scan_bytes(text.encode()).events] == [48]


def test_line_longer_than_the_buffer() -> None:
    text = "a" * 5000 + " NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, " + "b" * 5000 + "\n"
    assert [e.xid for e in scan_stream(io.BytesIO(text.encode()), chunk_size=64).events] == [13]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_parser_never_raises_on_arbitrary_input(line) -> None:
    parse_lines([line])
    parse_lines([line, line])


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("NVRM: Xid(PCI0:3b,)=pidname'<unknown>[]1234.\\x0a")), max_size=120)
)
def test_parser_never_raises_on_xid_like_noise(noise: str) -> None:
    parse_lines(["NVRM: Xid (" + noise])
    parse_lines([noise + "NVRM: Xid (PCI:0000:3b:00): 48, " + noise])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=8, max_value=512))
def test_scanner_never_raises(data: bytes, chunk: int) -> None:
    scan_bytes(data, chunk_size=chunk)


# ---- bounds: memory, line length, file size, event count --------------------------------------
def _write_no_newline(path, mib: int, block: bytes) -> None:
    chunk = block * ((1 << 20) // len(block))
    with open(path, "wb") as f:
        f.write(b"[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, ")
        for _ in range(mib):
            f.write(chunk)


def test_no_newline_file_keeps_memory_bounded(tmp_path) -> None:
    """Issue 20: a 128 MiB file with no newline (full of 'X') once doubled the buffer to GBs."""
    import tracemalloc

    from k8s_gpu_mcp.xid.scan import CHUNK_SIZE, MAX_CONTEXT, MAX_LINE, scan_file

    path = tmp_path / "no-newline.log"
    _write_no_newline(path, 128, b"Xid X")
    tracemalloc.start()
    try:
        parser = scan_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = CHUNK_SIZE + MAX_LINE + MAX_CONTEXT + (4 << 20)  # the buffer, plus 4 MiB for everything else
    assert peak < bound, (peak, bound)
    (ev,) = parser.events  # the line's first MAX_LINE bytes are still parsed
    assert ev.xid == 13 and len(ev.raw) <= MAX_LINE
    assert any(f"longer than {MAX_LINE} bytes" in n for n in parser.notes)


def test_long_line_is_cut_and_the_next_lines_are_still_read() -> None:
    from k8s_gpu_mcp.xid.scan import MAX_LINE

    text = b"A" * (3 * MAX_LINE) + b"\n[ 2.0] NVRM: Xid (PCI:0000:3b:00): 31, pid=2, name=b, x\n"
    for chunk in (1000, 1 << 20):
        parser = scan_bytes(text, chunk_size=chunk)
        assert [e.xid for e in parser.events] == [31], chunk
        assert bool(parser.notes) == (chunk < MAX_LINE)  # cut while reading only when past the buffer


def test_big_file_is_read_from_its_tail(tmp_path) -> None:
    from k8s_gpu_mcp.xid.scan import scan_file

    path = tmp_path / "big.log"
    old = "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, old\n"
    new = "[ 9.0] NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=a, new\n"
    path.write_text(old + "filler line\n" * 10_000 + new)
    parser = scan_file(path, max_bytes=4096)
    assert [e.xid for e in parser.events] == [31]
    assert any("last 0 MiB" in n or "only its last" in n for n in parser.notes)


def test_scan_stops_at_its_deadline() -> None:
    parser = scan_stream(io.BytesIO(b"[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, x\n" * 100), deadline_s=-1)
    assert parser.events == [] and "deadline" in parser.notes[0]


def test_event_count_is_capped_keeping_the_newest() -> None:
    from k8s_gpu_mcp.xid.parse import MAX_EVENTS

    lines = [
        f"[ {i}.0] NVRM: Xid (PCI:0000:3b:00): 13, pid={i + 1}, name=a, x" for i in range(2 * MAX_EVENTS + 5)
    ]
    parser = parse_lines(lines)
    assert len(parser.events) <= 2 * MAX_EVENTS
    assert parser.events[-1].pid == 2 * MAX_EVENTS + 5 and parser.dropped == MAX_EVENTS
    assert "event cap" in parser.notes[-1]


def test_rtc_line_dates_the_capture_whatever_the_chunk_size() -> None:
    from datetime import UTC, datetime, timedelta

    text = (
        b"[    0.000000] Linux version 6.8.0\n"
        b"[    1.500000] rtc_cmos 00:00: setting system clock to 2026-11-21T09:00:01 UTC (1795251601)\n"
        b"[ 3600.5] NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=a, x\n"
    )
    boot = datetime.fromtimestamp(1795251601, UTC) - timedelta(seconds=1.5)
    for chunk in (64, 1 << 20):
        (ev,) = scan_bytes(text, chunk_size=chunk, derive_boot=True).events
        assert ev.timestamp == boot + timedelta(seconds=3600.5), chunk
