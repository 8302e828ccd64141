"""The pure analysis: scenario verdicts, merging, filters, attribution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k8s_gpu_mcp.xid.analyze import REPLACE_ACTION, analyze, parse_since
from k8s_gpu_mcp.xid.models import XidAnalysis
from k8s_gpu_mcp.xid.parse import KernelEvent, parse_lines

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BOOT = NOW - timedelta(hours=2)
# The H100 HGX bus ids (NVML form), GPU index = position.
BUSES = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"]
GPU_MAP = [{"index": i, "uuid": f"GPU-{i:08x}", "bus_id": f"00000000:{b}:00.0"} for i, b in enumerate(BUSES)]

SCENARIO = [
    "[ 3600.000001] NVRM: Xid (PCI:0000:5d:00): 48, pid=4242, name=python3, An uncorrectable double bit error (DBE) "
    "has been detected on GPU in the framebuffer at partition 4, subpartition 1.",
    "[ 3600.100000] NVRM: Xid (PCI:0000:5d:00): 63, pid=4242, name=python3, Row Remapper: New row marked for remapping, reset gpu to activate.",
    "[ 3601.000000] NVRM: Xid (PCI:0000:5d:00): 45, pid=4242, name=python3, Ch 00000008 caused by previous Xid 48",
    "[ 3700.000000] NVRM: Xid (PCI:0000:ab:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    "[ 3700.000100] NVRM: GPU 0000:ab:00.0: GPU has fallen off the bus.",
]


def _run(lines: list[str], **kwargs) -> XidAnalysis:
    return analyze(parse_lines(lines, boot_time=BOOT).events, GPU_MAP, now=NOW, **kwargs)


def test_scenario_48_and_79_is_fatal_with_drain_actions_on_the_right_gpus() -> None:
    r = _run(SCENARIO)
    assert r.status == "critical"
    assert r.action.startswith("Drain the node")
    assert "XID 48 (Double Bit ECC Error) on GPU 3" in r.action
    assert "XID 79 (GPU has fallen off the bus) on GPU 5" in r.action
    assert "Drain the node and reset the GPU: XID 48" in r.action
    assert "Drain the node and reboot it: XID 79" in r.action
    by_xid = {e.xid: e for e in r.events}
    assert by_xid[48].index == 3 and by_xid[48].uuid == "GPU-00000003" and by_xid[48].pid == 4242
    assert by_xid[48].timestamp == BOOT + timedelta(seconds=3600.000001)
    assert any("63/64" in n for n in by_xid[48].notes)
    assert by_xid[45].sympathetic and by_xid[45].catalog_severity == "Info"
    assert by_xid[79].index == 5 and by_xid[79].pci_bus_id == "00000000:AB:00.0"
    assert len(r.events) == 4  # the companion "GPU has fallen off the bus." line is not an XID
    top = r.xids[0]
    assert (top.catalog_severity, top.count) == ("Fatal", 1)
    assert not r.truncated and r.total_events == 4


def test_lost_gpu_without_xid_is_reported_like_79_and_merged_with_its_xid() -> None:
    head = [
        "[ 3700.5] NVRM: The NVIDIA GPU 0000:ab:00.0",
        "[ 3700.5] NVRM: (PCI ID: 10de:2330) installed in this system has",
        "[ 3700.5] NVRM: fallen off the bus and is not responding to commands.",
    ]
    alone = _run(head)
    (ev,) = alone.events
    assert (ev.kind, ev.xid, ev.index, ev.catalog_severity) == ("gpu_lost", 79, 5, "Fatal")
    both = _run(SCENARIO[3:4] + head)
    assert [(e.kind, e.xid) for e in both.events] == [("xid", 79)]


def test_same_event_from_kmsg_and_nvml_is_merged() -> None:
    (kern,) = parse_lines([SCENARIO[0]], boot_time=BOOT).events
    kern.source = "kmsg"
    nvml = KernelEvent(
        kind="xid", xid=48, pci=None, bus_id=None, pid=None, process=None, message="", raw="NVML",
        timestamp=kern.timestamp + timedelta(seconds=1), uptime_s=None, timestamp_kind="nvml",
        timestamp_note=None, source="nvml", gpu_index=3,
    )  # fmt: skip
    r = analyze([kern, nvml], GPU_MAP, now=NOW)
    (ev,) = r.events
    assert ev.sources == ["kmsg", "nvml"] and ev.index == 3


def test_repeated_events_from_one_source_are_kept() -> None:
    line = "[ 3600.0] NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=a, Graphics SM Warp Exception"
    r = _run([line, line.replace("3600.0", "3600.5")])
    assert r.total_events == 2 and r.xids[0].count == 2


def test_recurring_hardware_xid_escalates_to_replace() -> None:
    lines = [
        f"[ {3600 + i * 60}.0] NVRM: Xid (PCI:0000:18:00): 95, pid=1, name=a, Uncontained" for i in range(3)
    ]
    r = _run(lines)
    assert r.xids[0].sre_action == REPLACE_ACTION
    assert r.action.startswith(REPLACE_ACTION)


def test_since_filter_limit_and_min_severity() -> None:
    old = "[ 10.0] NVRM: Xid (PCI:0000:18:00): 48, pid=1, name=a, DBE"  # 2h before NOW
    assert _run([old], since="1h").status == "healthy"
    assert _run([old], since="3h").status == "degraded"  # WORKFLOW_XID_48: solo -> reset the GPU
    assert _run([old], since=(NOW - timedelta(hours=3)).isoformat()).status == "degraded"
    many = [f"[ {3600 + i}.0] NVRM: Xid (PCI:0000:18:00): 13, pid=1, name=a, x" for i in range(5)]
    r = _run(many + SCENARIO[:1], limit=2)
    assert r.truncated and len(r.events) == 2 and r.total_events == 6 and r.status == "degraded"
    r = _run(SCENARIO, min_severity="Fatal")
    assert {e.xid for e in r.events} == {48, 79}


def test_gpu_filter_by_index_uuid_or_bus_id() -> None:
    assert {e.xid for e in _run(SCENARIO, gpus=[5]).events} == {79}
    assert {e.xid for e in _run(SCENARIO, gpus=["GPU-00000003"]).events} == {48, 63, 45}
    assert {e.xid for e in _run(SCENARIO, gpus=["PCI:0000:ab:00"]).events} == {79}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"since": "yesterday"}, "invalid since"),
        ({"min_severity": "Bad"}, "valid: Info, Warning, Critical, Fatal"),
        ({"gpus": [42]}, "valid GPUs"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_arguments_raise_with_choices(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        _run(SCENARIO, **kwargs)


def test_parse_since_forms() -> None:
    assert parse_since("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("1h30m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2026-11-21T10:00:00Z", NOW) == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert parse_since(None, NOW) is None


def test_unmatched_bus_ids_and_undated_events_are_noted() -> None:
    r = _run(["NVRM: Xid (PCI:0000:ee:00): 48, pid=1, name=a, DBE"])
    (ev,) = r.events
    assert ev.index is None and ev.timestamp is None
    assert "on PCI 0000:ee:00" not in r.action and "PCI:0000:ee:00" in r.notes[0]
    assert "no usable timestamp" in r.notes[1]
    assert "PCI 00000000:EE:00.0" in r.action


def test_no_events_is_ok() -> None:
    r = _run(["[ 1.0] eth0: link up"])
    assert r.status == "healthy" and r.events == [] and "no action" in r.action


def test_cgroup_attribution_under_a_proc_root(tmp_path: Path) -> None:
    cid = "a" * 64
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/"
        f"cri-containerd-{cid}.scope\n"
    )
    r = analyze(parse_lines(SCENARIO[:1], boot_time=BOOT).events, GPU_MAP, now=NOW, proc_root=tmp_path)
    (ev,) = r.events
    assert ev.container_id == cid and ev.pod_uid == "1b2c3d4e-0000-1111-2222-333344445555"
    r = analyze(
        parse_lines(SCENARIO[:1], boot_time=BOOT).events, GPU_MAP, now=NOW, proc_root=tmp_path / "none"
    )
    assert r.events[0].container_id is None


def test_sxids_are_kept_apart() -> None:
    lines = SCENARIO[:1] + [
        "[ 3600.2] nvidia-nvswitch0: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 30 LTSSM Fault Up"
    ]
    p = parse_lines(lines, boot_time=BOOT)
    r = analyze(p.events, GPU_MAP, now=NOW, sxids=p.sxids)
    assert [e.xid for e in r.events] == [48]
    assert [(s.sxid, s.fatal, s.link) for s in r.sxids] == [(20034, True, 30)]


def test_result_is_json_serialisable() -> None:
    assert '"status":"critical"' in _run(SCENARIO).model_dump_json()


def test_lost_gpu_without_bus_id_gets_the_orphan_kernel_events_by_elimination():
    from k8s_gpu_mcp.xid.analyze import analyze
    from k8s_gpu_mcp.xid.parse import parse_lines

    lines = [
        "[ 100.0] NVRM: Xid (PCI:0000:9a:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
    ]
    gpu_map = [
        {"index": 0, "uuid": "GPU-a", "bus_id": "00000000:18:00.0"},
        {"index": 1, "uuid": None, "bus_id": None},
    ]
    result = analyze(parse_lines(lines).events, gpu_map, since=None)
    assert [e.index for e in result.events] == [1]
    assert any("by elimination" in n for n in result.notes)
    # two unreadable GPUs: ambiguous, so no attribution
    gpu_map.append({"index": 2, "uuid": None, "bus_id": None})
    assert [e.index for e in analyze(parse_lines(lines).events, gpu_map, since=None).events] == [None]
