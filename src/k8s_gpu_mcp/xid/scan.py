"""Fast scanning of big kernel logs: find candidate lines with memchr-speed searches, parse only those.

A chunk (8 MiB, split at its last newline) is searched for the byte ``X`` (``bytes.find`` of one
byte is ``memchr``) and kept where ``Xid`` follows (``NVRM: Xid`` and ``SXid``), then for
``fallen off the bus`` (the no-XID lost-GPU report, with the two lines before it). Only those
lines reach the parser, in file order.

Memory and time are bounded whatever the input: the buffer has a fixed size (one chunk plus one
maximum line), a line is cut at ``MAX_LINE`` bytes (the rest of it is skipped, never buffered), a
file larger than ``MAX_FILE_BYTES`` is read from its last ``MAX_FILE_BYTES``, and a scan stops at
its deadline. Each cut is said in the parser's ``notes``.
"""

from __future__ import annotations

import gzip
import io
import os
import time
from collections.abc import Iterator
from datetime import datetime, tzinfo
from pathlib import Path
from typing import BinaryIO

from .parse import LineParser

CHUNK_SIZE = 8 << 20
MAX_LINE = 64 << 10  # printk records are at most ~1 KiB of text; journald lines a few KiB
MAX_CONTEXT = 4096  # the two lines kept in front of a chunk for a lost-GPU report split across chunks
MAX_FILE_BYTES = 1 << 30  # a bigger file is read from its last GiB (the newest lines)
SCAN_DEADLINE_S = 30.0
_LOST = b"fallen off the bus"
_CLOCK = b"system clock to"  # the RTC line at boot: a wall clock for the uptime stamps of that boot
_CLOCK_WITHIN = 1 << 20  # printed in the first seconds of a boot: looked for in a capture's first MiB
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
        found[ps] = bytes(buf[ps : min(ls - 1, ps + MAX_LINE)])
        ls = ps


def _candidates(
    buf: bytearray, start: int, end: int, ctx: int = 0, clock_end: int = 0
) -> list[tuple[int, bytes]]:
    """Candidate lines in ``buf[start:end]``; ``buf[ctx:start]`` holds earlier lines kept for context.
    ``clock_end``: the boot's RTC line of a dmesg capture is looked for in ``buf[start:clock_end]``,
    the part of the stream's first ``_CLOCK_WITHIN`` bytes (a substring search costs as much as the
    others, so not over the whole file)."""
    found: dict[int, bytes] = {}
    find = buf.find
    anchor, misses = b"X", 0
    i = find(anchor, start, end)
    while i != -1:
        if buf.startswith(b"Xid", i):
            ls, le = _line_bounds(buf, start, end, i)
            found[ls] = bytes(buf[ls : min(le, ls + MAX_LINE)])
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
        found[ls] = bytes(buf[ls : min(le, ls + MAX_LINE)])
        prev_end = ls - 1
        for _ in range(2):  # the "The NVIDIA GPU <bdf>" head is up to two lines earlier
            if prev_end < ctx:
                break
            ps = max(buf.rfind(b"\n", ctx, prev_end) + 1, ctx)
            found[ps] = bytes(buf[ps : min(prev_end, ps + MAX_LINE)])
            prev_end = ps - 1
        i = find(_LOST, le, end)
    i = find(_CLOCK, start, clock_end) if clock_end > start else -1
    while i != -1:
        ls, le = _line_bounds(buf, start, end, i)
        found[ls] = bytes(buf[ls : min(le, ls + MAX_LINE)])
        i = find(_CLOCK, le, clock_end)
    return sorted(found.items())


def iter_candidate_lines(
    stream: BinaryIO,
    chunk_size: int = CHUNK_SIZE,
    *,
    notes: list[str] | None = None,
    skip_first_line: bool = False,
    deadline_s: float = SCAN_DEADLINE_S,
) -> Iterator[bytes]:
    """Yield, in order, the lines of ``stream`` that may hold an XID, SXid or lost-GPU report.

    Never holds more than ``chunk_size + MAX_LINE + MAX_CONTEXT`` bytes of input. ``skip_first_line``:
    the stream starts inside a line (a tail of a file), drop up to the first newline."""
    notes = notes if notes is not None else []
    buf = bytearray(chunk_size + MAX_LINE + MAX_CONTEXT)
    carry = 0  # bytes kept at the front: context lines [0:start) + the unfinished line [start:carry)
    start = 0
    base = 0  # stream offset of buf[0]
    recent: set[int] = set()  # stream offsets of lines already yielded that may sit in the context
    skipping = skip_first_line  # inside a line past MAX_LINE: drop bytes up to the next newline
    cut_lines = 0
    stop_at = time.monotonic() + deadline_s

    def emit(lo: int, hi: int) -> Iterator[bytes]:
        clock_end = 0 if skip_first_line else min(hi, _CLOCK_WITHIN - base)
        for off, line in _candidates(buf, lo, hi, 0, clock_end):
            if base + off not in recent:
                recent.add(base + off)
                yield line

    while True:
        if time.monotonic() > stop_at:
            notes.append(f"scan stopped at its {deadline_s:g} s deadline after {base + carry} bytes")
            break
        with memoryview(buf) as mv:
            n = stream.readinto(mv[carry : carry + chunk_size])  # type: ignore[attr-defined]
        if not n:
            if carry > start and not skipping:
                yield from emit(start, carry)
            break
        end = carry + n
        if skipping:
            nl = buf.find(b"\n", carry, end)
            if nl == -1:
                base, carry, start = base + end, 0, 0
                continue
            drop = nl + 1
            buf[0 : end - drop] = buf[drop:end]
            base, carry, start, end, skipping = base + drop, 0, 0, end - drop, False
            recent.clear()
        cut = buf.rfind(b"\n", start, end) + 1
        if cut == 0:
            if end - start < MAX_LINE:
                carry = end
                continue
            # one line past MAX_LINE: keep its first MAX_LINE bytes, skip the rest without buffering it
            yield from emit(start, start + MAX_LINE)
            cut_lines += 1
            base, carry, start, skipping = base + end, 0, 0, True
            recent.clear()
            continue
        yield from emit(start, cut)
        # keep the last two complete lines as context for a lost-GPU report split across chunks
        ctx = max(buf.rfind(b"\n", 0, max(buf.rfind(b"\n", 0, cut - 1), 0)) + 1, 0)
        ctx = ctx if cut - ctx <= MAX_CONTEXT else cut
        buf[0 : end - ctx] = buf[ctx:end]
        base += ctx
        recent = {off for off in recent if off >= base}
        start, carry = cut - ctx, end - ctx
    if cut_lines:
        notes.append(f"{cut_lines} line(s) longer than {MAX_LINE} bytes were cut at that length")


def scan_stream(
    stream: BinaryIO,
    *,
    boot_time: datetime | None = None,
    now: datetime | None = None,
    tz: tzinfo | None = None,
    chunk_size: int = CHUNK_SIZE,
    skip_first_line: bool = False,
    deadline_s: float = SCAN_DEADLINE_S,
    derive_boot: bool = False,
) -> LineParser:
    """Scan a binary stream (file, pipe) and parse its candidate lines (``derive_boot``: see LineParser)."""
    parser = LineParser(boot_time=boot_time, now=now, tz=tz, derive_boot=derive_boot)
    lines = iter_candidate_lines(
        stream, chunk_size, notes=parser.notes, skip_first_line=skip_first_line, deadline_s=deadline_s
    )
    for line in lines:
        parser.feed(line)
    return parser.finish()


def scan_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, **kwargs: object) -> LineParser:
    """Scan a kernel log file (post-mortems, collected logs); a file over ``max_bytes`` from its tail."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        tail = size > max_bytes
        if tail:
            f.seek(size - max_bytes)
        parser = scan_stream(f, skip_first_line=tail, **kwargs)  # type: ignore[arg-type]
    if tail:
        parser.notes.append(
            f"the file is {size >> 20} MiB: only its last {max_bytes >> 20} MiB (the newest lines) were read"
        )
    return parser


class _Capped(io.RawIOBase):
    """At most ``limit`` bytes of ``inner`` (a decompressing reader: a gzip bomb stays bounded)."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self.inner, self.left, self.cut = inner, limit, False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.left <= 0:
            self.cut = self.cut or bool(self.inner.read(1))
            return 0
        with memoryview(b) as mv:
            n = self.inner.readinto(mv[: min(len(mv), self.left)])  # type: ignore[attr-defined]
        self.left -= n or 0
        return n or 0


def scan_gzip(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES, **kwargs: object) -> LineParser:
    """Scan a gzip-rotated kernel log (``kern.log.2.gz``): its first ``max_bytes`` decompressed bytes
    at most (a gzip stream cannot be read from its tail), within the scan deadline; a cut is noted.
    Raises OSError (gzip.BadGzipFile included) when the file cannot be read."""
    with gzip.open(path, "rb") as inner:
        capped = _Capped(inner, max_bytes)  # type: ignore[arg-type]
        parser = scan_stream(capped, **kwargs)  # type: ignore[arg-type]
    if capped.cut:
        parser.notes.append(
            f"{Path(path).name}: only its first {max_bytes >> 20} MiB decompressed were read (the oldest lines)"
        )
    return parser


def scan_bytes(data: bytes, **kwargs: object) -> LineParser:
    """Scan kernel log text already in memory (e.g. journalctl output)."""
    return scan_stream(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
