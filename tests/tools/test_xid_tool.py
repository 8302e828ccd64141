from __future__ import annotations

import json
import time

import pytest

from tests.conftest import call

# H100 profile bus ids: GPU 3 and GPU 5, kernel-log form.
XID48_79 = {
    "name": "xid-48-79",
    "kernel_log": "\n".join(
        [
            "[ 3600.000001] NVRM: Xid (PCI:{b3}): 48, pid=4242, name=python3, An uncorrectable double bit error (DBE) "
            "has been detected on GPU in the framebuffer at partition 4, subpartition 1.",
            "[ 3601.000000] NVRM: Xid (PCI:{b3}): 45, pid=4242, name=python3, Ch 00000008 caused by previous Xid 48",
            "[ 3700.000000] NVRM: Xid (PCI:{b5}): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
            "[ 3700.000100] NVRM: GPU {b5}.0: GPU has fallen off the bus.",
        ]
    ),
}


def _scenario(make_app):
    probe = make_app()
    refs = probe.backend.adapter.gpus()
    text = XID48_79["kernel_log"].format(b3=refs[3].short_bus_id, b5=refs[5].short_bus_id)
    return make_app(scenario={**XID48_79, "kernel_log": text}), refs


@pytest.mark.anyio
async def test_xid_48_and_79_on_h100_is_fatal_with_drain_actions(make_app):
    app, refs = _scenario(make_app)
    result = await call(app, "analyze_xid_errors", {"detail": "full"})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert data["status"] == "critical"  # XID 79 is Fatal; WORKFLOW_XID_48 solo (reset) is Critical
    rec = data["action"]
    assert "Reset the GPU (drain its workloads first); run field diagnostics if it recurs: XID 48" in rec
    (wf,) = [w for w in data["workflows"] if w["xid"] == 48]
    assert (wf["workflow"], wf["index"], wf["pattern"]) == ("WORKFLOW_XID_48", 3, "solo")
    assert "Drain the node and reboot it: XID 79 (GPU has fallen off the bus) on GPU 5" in rec
    by_xid = {e["xid"]: e for e in data["events"]}
    assert by_xid[48]["uuid"] == refs[3].uuid and by_xid[48]["pci_bus_id"] == refs[3].bus_id
    assert by_xid[48]["catalog_severity"] == "Critical" and by_xid[48]["status"] == "degraded"  # XID_STATUS
    assert by_xid[79]["index"] == 5 and by_xid[45]["sympathetic"]
    assert data["source"]["mock"] is True and "scenario" in data["sources"]


@pytest.mark.anyio
async def test_filters_and_nvml_source(make_app):
    app, _ = _scenario(make_app)
    data = (
        await call(app, "analyze_xid_errors", {"gpus": [5], "min_severity": "fatal", "detail": "full"})
    ).structured_content
    assert [e["xid"] for e in data["events"]] == [79]
    data = (await call(app, "analyze_xid_errors", {"source": "nvml"})).structured_content
    assert data["status"] == "healthy" and data["sources"] == ["nvml"]


@pytest.mark.anyio
async def test_live_nvml_event_from_scenario(make_app):
    app = make_app(scenario={"xid_events": [{"gpu": 2, "xid": 48}]})
    for _ in range(100):
        data = (
            await call(app, "analyze_xid_errors", {"source": "nvml", "detail": "full"})
        ).structured_content
        if data["events"]:
            break
        time.sleep(0.05)
    (ev,) = data["events"]
    assert (ev["xid"], ev["index"], ev["sources"]) == (48, 2, ["nvml"])


@pytest.mark.anyio
async def test_kernel_log_file_setting(make_app, tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("[ 10.0] NVRM: Xid (PCI:0000:ee:00): 13, pid=1, name=a, Graphics SM Warp Exception\n")
    app = make_app(kernel_log=str(log))
    data = (await call(app, "analyze_xid_errors", {"since": "3650d", "detail": "full"})).structured_content
    assert data["sources"][0] == "file" and data["events"][0]["xid"] == 13 and data["events"][0]["app_caused"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"source": "bogus"}, "invalid source"),
        ({"source": "kmsg"}, "mock fleet"),
        ({"since": "yesterday"}, "invalid since"),
        ({"min_severity": "Huge"}, "valid: Info"),
        ({"gpus": [42]}, "valid GPUs"),
    ],
)
async def test_bad_arguments_are_tool_errors(make_app, args, needle):
    result = await call(make_app(), "analyze_xid_errors", args)
    assert result.is_error and needle in result.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"since": "99999999999w"}, "invalid since"),  # OverflowError inside timedelta arithmetic
        ({"since": "9" * 5000 + "d"}, "invalid since"),
        ({"since": "x" * 2_000_000}, "invalid since"),
        ({"min_severity": "y" * 2_000_000}, "argument 'min_severity' = "),
        ({"source": "/" + "a" * 300}, "invalid source"),  # would be ENAMETOOLONG if it were opened
        ({"source": "z" * 2_000_000}, "invalid source"),
    ],
)
async def test_hostile_arguments_are_clear_clipped_errors(make_app, args, needle):
    result = await call(make_app(), "analyze_xid_errors", args)
    text = result.content[0].text
    assert result.is_error and needle in text
    assert len(text) < 1000 and "Traceback" not in text


@pytest.mark.anyio
async def test_a_file_the_operator_did_not_name_is_refused_unread(make_app, tmp_path):
    secret = tmp_path / "secret.log"
    secret.write_text("[ 10.0] NVRM: Xid (PCI:0000:ee:00): 13, pid=1, name=a, x\n")
    named = tmp_path / "kern.log"
    named.write_text("")
    app = make_app(kernel_log=str(named))
    for path in (str(secret), str(tmp_path / "x" / ".." / "secret.log"), "/etc/shadow", "/proc/self/environ"):
        result = await call(app, "analyze_xid_errors", {"source": path})
        assert result.is_error, path
        assert "operator named" in result.content[0].text and str(named) in result.content[0].text


@pytest.mark.anyio
async def test_files_on_the_allow_list_are_read(make_app, tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("[ 10.0] NVRM: Xid (PCI:0000:ee:00): 31, pid=1, name=a, x\n")
    b.write_text("2026-11-21T10:00:00Z gpu-7 kernel: NVRM: Xid (PCI:0000:ee:00): 43, pid=1, name=a, x\n")
    app = make_app(xid_log_files=f"{a}, {b}")
    for path, xid in ((str(a), 31), (f"{tmp_path}/./b.log", 43)):
        data = (
            await call(app, "analyze_xid_errors", {"source": path, "since": "3650d", "detail": "full"})
        ).structured_content
        assert data["sources"] == ["file", "nvml"] and [e["xid"] for e in data["events"]] == [xid]
    b.unlink()
    result = await call(app, "analyze_xid_errors", {"source": str(b)})
    assert result.is_error and "cannot read kernel log" in result.content[0].text


@pytest.mark.anyio
async def test_file_uptime_needs_the_boot_time_of_its_host(make_app, tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("[ 3600.0] NVRM: Xid (PCI:0000:ee:00): 13, pid=1, name=a, x\n")
    data = (
        await call(make_app(kernel_log=str(log)), "analyze_xid_errors", {"detail": "full"})
    ).structured_content
    (ev,) = data["events"]
    assert ev["timestamp"] is None and ev["uptime_s"] == 3600.0 and "--boot-time" in ev["timestamp_note"]
    app = make_app(kernel_log=str(log), boot_time="2026-11-21T09:00:00Z")
    (ev,) = (await call(app, "analyze_xid_errors", {"since": "3650d", "detail": "full"})).structured_content[
        "events"
    ]
    assert ev["timestamp"].startswith("2026-11-21T10:00:00")
    result = await call(make_app(kernel_log=str(log), boot_time="soon"), "analyze_xid_errors")
    assert result.is_error and "--boot-time" in result.content[0].text


@pytest.mark.anyio
async def test_catalog_resource(make_app):
    from mcp.client import Client

    async with Client(make_app().server) as client:
        res = await client.read_resource("xid://catalog/48")
    entry = json.loads(res.contents[0].text)
    assert entry["immediate_bucket"] == "WORKFLOW_XID_48" and entry["severity"] == "Fatal"
