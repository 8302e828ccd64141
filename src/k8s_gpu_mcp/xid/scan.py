"""Fast scanning of big kernel logs: find candidate lines with memchr-speed searches, parse only those.

A chunk (8 MiB, split at its last newline) is searched for the byte ``X`` (``bytes.find`` of one
byte is ``memchr``) and kept where ``Xid`` follows (``NVRM: Xid`` and ``SXid``), then for
``fallen off the bus`` (the no-XID lost-GPU report, with the two lines before it). Only those
lines reach the parser, in file order.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import BinaryIO

from .parse import LineParser

CHUNK_SIZE = 8 << 20
_LOST = b"fallen off the bus"
_RECORD_LINES = 8  # continuation lines of one journald record looked back over
_MAX_MISSES = 4096  # per chunk, before switching from memchr('X') to find(b"Xid")


def _line_bounds(buf: bytearray, start: int, end: int, i: int) -> tuple[int, int]:
    ls = buf.rfind(b"\n", start, i) + 1 or start
    ls = max(ls, start)
    le = buf.find(b"\n", i, end)
    return ls, (end if le == -1 else le)


def _record_head(buf: bytearray, found: dict[int, bytes], ls: int, floor: int) -> None:
    """An indented candidate line continues a multi-line record (journald): keep the lines back to
    the record's first line, which carries the timestamp."""
    for _ in range(_RECORD_LINES):
        if ls <= floor or buf[ls] not in b" \t":
            return
        ps = max(buf.rfind(b"\n", floor, ls - 1) + 1, floor)
        found[ps] = bytes(buf[ps : ls - 1])
        ls = ps


def _candidates(buf: bytearray, start: int, end: int, ctx: int = 0) -> list[tuple[int, bytes]]:
    """Candidate lines in ``buf[start:end]``; ``buf[ctx:start]`` holds earlier lines kept for context."""
    found: dict[int, bytes] = {}
    find = buf.find
    anchor, misses = b"X", 0
    i = find(anchor, start, end)
    while i != -1:
        if buf.startswith(b"Xid", i):
            ls, le = _line_bounds(buf, start, end, i)
            found[ls] = bytes(buf[ls:le])
            if buf[ls] in b" \t":
                _record_head(buf, found, ls, ctx)
            i = find(anchor, le, end)
        else:
            misses += 1
            if misses == _MAX_MISSES:  # an 'X'-heavy log: a substring search is cheaper from here on
                anchor = b"Xid"
            i = find(anchor, i + 1, end)
    i = find(_LOST, start, end)
    while i != -1:
        ls, le = _line_bounds(buf, start, end, i)
        if ls in found:  # the XID 79 line itself, already taken by the first pass
            i = find(_LOST, le, end)
            continue
        found[ls] = bytes(buf[ls:le])
        prev_end = ls - 1
        for _ in range(2):  # the "The NVIDIA GPU <bdf>" head is up to two lines earlier
            if prev_end < ctx:
                break
            ps = max(buf.rfind(b"\n", ctx, prev_end) + 1, ctx)
            found[ps] = bytes(buf[ps:prev_end])
            prev_end = ps - 1
        i = find(_LOST, le, end)
    return sorted(found.items())


def iter_candidate_lines(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield, in order, the lines of ``stream`` that may hold an XID, SXid or lost-GPU report."""
    buf = bytearray(chunk_size)
    carry = 0  # bytes kept at the front: context lines [0:start) + the unfinished line [start:carry)
    start = 0
    base = 0  # stream offset of buf[0]
    recent: set[int] = set()  # stream offsets of lines already yielded that may sit in the context

    def emit(lo: int, hi: int) -> Iterator[bytes]:
        for off, line in _candidates(buf, lo, hi, 0):
            if base + off not in recent:
                recent.add(base + off)
                yield line

    while True:
        with memoryview(buf) as mv:
            n = stream.readinto(mv[carry:])  # type: ignore[attr-defined]
        if not n:
            if carry > start:
                yield from emit(start, carry)
            return
        end = carry + n
        cut = buf.rfind(b"\n", start, end) + 1
        if cut == 0:  # one line longer than the buffer: grow it
            if end == len(buf):
                buf.extend(bytearray(len(buf)))
            carry = end
            continue
        yield from emit(start, cut)
        # keep the last two complete lines as context for a lost-GPU report split across chunks
        ctx = max(buf.rfind(b"\n", 0, max(buf.rfind(b"\n", 0, cut - 1), 0)) + 1, 0)
        ctx = ctx if cut - ctx <= 4096 else cut
        buf[0 : end - ctx] = buf[ctx:end]
        base += ctx
        recent = {off for off in recent if off >= base}
        start, carry = cut - ctx, end - ctx
        if carry == len(buf):
            buf.extend(bytearray(len(buf)))


def scan_stream(
    stream: BinaryIO,
    *,
    boot_time: datetime | None = None,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> LineParser:
    """Scan a binary stream (file, pipe) and parse its candidate lines."""
    parser = LineParser(boot_time=boot_time, now=now, tz=tz)
    for line in iter_candidate_lines(stream, chunk_size):
        parser.feed(line)
    return parser


def scan_file(path: str | Path, **kwargs: object) -> LineParser:
    """Scan a kernel log file (post-mortems, collected logs)."""
    with open(path, "rb", buffering=0) as f:
        return scan_stream(f, **kwargs)  # type: ignore[arg-type]


def scan_bytes(data: bytes, **kwargs: object) -> LineParser:
    """Scan kernel log text already in memory (e.g. journalctl output)."""
    return scan_stream(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
