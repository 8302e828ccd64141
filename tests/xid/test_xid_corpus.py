"""Every real (and clearly marked synthesised) kernel line in corpus/real_lines.jsonl parses as expected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k8s_gpu_mcp.xid.analyze import analyze
from k8s_gpu_mcp.xid.parse import parse_lines

CORPUS = Path(__file__).parent / "corpus" / "real_lines.jsonl"
RECORDS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
BOOT = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_corpus_size_and_provenance() -> None:
    real = [r for r in RECORDS if "synthesised_from" not in r]
    assert len(real) >= 90  # 44 real lines before issue 15, 48 more with it
    assert all(r["source"] for r in RECORDS)
    assert all(r["synthesised_from"].startswith("http") for r in RECORDS if "synthesised_from" in r)
    kinds = {r["expected"]["kind"] for r in RECORDS}
    assert kinds == {"xid", "gpu_lost", "sxid", "none"}


@pytest.mark.parametrize(
    "record", RECORDS, ids=lambda r: (r["line"] if isinstance(r["line"], str) else r["line"][0])[:60]
)
def test_corpus_line(record: dict) -> None:
    lines = record["line"] if isinstance(record["line"], list) else [record["line"]]
    parser = parse_lines(lines, boot_time=BOOT, now=NOW, tz=UTC)
    exp = record["expected"]
    if exp["kind"] == "none":
        assert parser.events == [] and parser.sxids == []
        return
    if exp["kind"] == "sxid":
        assert parser.events == []
        (sx,) = parser.sxids
        assert (sx.sxid, sx.bus_id, sx.timestamp_kind) == (exp["sxid"], exp["bus_id"], exp["timestamp_kind"])
        for key in ("fatal", "link"):
            if key in exp:
                assert getattr(sx, key) == exp[key]
        return
    assert parser.sxids == []
    (ev,) = parser.events
    assert ev.kind == exp["kind"]
    assert ev.xid == exp["xid"]
    assert ev.bus_id == exp["bus_id"]
    assert ev.pid == exp["pid"]
    assert ev.process == exp["process"]
    assert ev.timestamp_kind == exp["timestamp_kind"]
    if exp["timestamp_kind"] != "none" and exp.get("timestamp", "x") is not None:
        assert ev.timestamp is not None and ev.timestamp.tzinfo is not None
    else:
        assert ev.timestamp is None and ev.timestamp_note
    for key in ("caused_by_xid", "sympathetic"):
        if key in exp:
            assert getattr(ev, key) == exp[key]
    if "bucket" in exp:  # message-level decoding of the same line
        gpu = [{"index": 0, "uuid": "GPU-x", "bus_id": exp["bus_id"]}]
        (out,) = analyze([ev], gpu, since=None, now=NOW).events
        assert out.bucket == exp["bucket"]
        assert out.investigatory_bucket == exp["investigatory_bucket"]
        if "subcode" in exp:
            assert out.subcode == exp["subcode"]


@pytest.mark.parametrize(
    ("text", "nvml"),
    [
        ("PCI:0000:3b:00", "00000000:3B:00.0"),
        ("PCI:3b:00", "00000000:3B:00.0"),
        ("0000:3b:00.0", "00000000:3B:00.0"),
        ("00000000:3B:00.0", "00000000:3B:00.0"),
        ("PCI:0019:01:00", "00000019:01:00.0"),
        ("PCI:...", None),
        ("", None),
    ],
)
def test_bus_id_normalisation_round_trip(text: str, nvml: str | None) -> None:
    from k8s_gpu_mcp.gpu.pci import kernel_bus_id, normalize_bus_id

    assert normalize_bus_id(text) == nvml
    if nvml:
        assert normalize_bus_id("PCI:" + kernel_bus_id(nvml)) == nvml
        assert kernel_bus_id(nvml) == nvml[4:-2].lower()
