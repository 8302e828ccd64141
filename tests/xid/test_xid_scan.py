"""The chunked scanner finds exactly what a line-by-line parse finds; the parser never raises."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_gpu_mcp.xid.parse import parse_line, parse_lines
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
    parse_line(line)
    parse_lines([line, line])


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("NVRM: Xid(PCI0:3b,)=pidname'<unknown>[]1234.\\x0a")), max_size=120)
)
def test_parser_never_raises_on_xid_like_noise(noise: str) -> None:
    parse_line("NVRM: Xid (" + noise)
    parse_line(noise + "NVRM: Xid (PCI:0000:3b:00): 48, " + noise)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=8, max_value=512))
def test_scanner_never_raises(data: bytes, chunk: int) -> None:
    scan_bytes(data, chunk_size=chunk)
