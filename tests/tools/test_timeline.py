"""get_node_timeline through MCP: XIDs, state now and pod history in one ordered list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from k8s_gpu_mcp.k8s.client import set_default_api
from tests.conftest import call
from tests.k8s.fake_api import FakeCluster, gpu_node, gpu_pod

pytestmark = pytest.mark.anyio


@pytest.fixture
def no_api():
    set_default_api(None)
    yield
    set_default_api(None)


async def test_xid48_and_the_pending_remap_are_on_gpu_0_in_time_order(make_app, no_api, monkeypatch):
    monkeypatch.setenv("K8S_GPU_MCP_KUBECONFIG", "/nonexistent/kubeconfig")
    data = (await call(make_app(None, "ecc-dbe-xid48"), "get_node_timeline")).structured_content
    entries = data["entries"]
    xid48 = next(e for e in entries if e["kind"] == "xid" and "XID 48" in e["meaning"])
    assert xid48["gpu"] == 0 and xid48["source"] == "kernel-log" and "(critical)" in xid48["meaning"]
    ecc = next(e for e in entries if e["kind"] == "ecc")
    assert ecc["gpu"] == 0 and "reset-required" in ecc["meaning"]
    times = [e["time"] for e in entries if e["time"]]
    assert times == sorted(times)
    assert "kubernetes" in data["unavailable"]  # no API configured: said, not skipped silently
    assert data["source"]["mock"] is True


async def test_pod_history_comes_from_the_api(make_app, no_api):
    started = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    trainer = gpu_pod("trainer", "gpu-node-test", 8)
    trainer["status"] = {
        "phase": "Running",
        "startTime": started,
        "containerStatuses": [{"name": "main", "image": "x", "imageID": "", "ready": True, "restartCount": 1,
                               "lastState": {"terminated": {
            "reason": "OOMKilled", "exitCode": 137, "finishedAt": started}}}],
    }  # fmt: skip
    set_default_api(FakeCluster([gpu_node("gpu-node-test")], [trainer]).api())
    data = (await call(make_app(), "get_node_timeline", {"since": "24h"})).structured_content
    mine = [e for e in data["entries"] if e["pod"] == "ml/trainer"]
    assert {e["kind"] for e in mine} == {"pod_started", "container_ended"}
    assert any("OOMKilled" in e["meaning"] for e in mine)
    assert "kubernetes" not in data["unavailable"]


async def test_a_window_in_the_future_is_refused(make_app, no_api):
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    result = await call(make_app(), "get_node_timeline", {"since": future})
    assert result.is_error and "in the future" in result.content[0].text


async def test_limit_keeps_the_most_recent_and_counts_the_rest(make_app, no_api, monkeypatch):
    monkeypatch.setenv("K8S_GPU_MCP_KUBECONFIG", "/nonexistent/kubeconfig")
    full = (await call(make_app(None, "ecc-dbe-xid48"), "get_node_timeline")).structured_content
    one = (await call(make_app(None, "ecc-dbe-xid48"), "get_node_timeline", {"limit": 1})).structured_content
    assert len(one["entries"]) == 1 and one["dropped"] == len(full["entries"]) - 1
    assert one["entries"][0]["kind"] == full["entries"][-1]["kind"]


async def test_fields_this_gpu_never_has_are_no_gap(make_app, no_api, monkeypatch):
    """Hopper has no L1/texture ECC locations: NotSupported by design is left out of `unavailable`
    (it was 225 lines, 20 KB, of the default answer); a reason that is a gap would still be there."""
    monkeypatch.setenv("K8S_GPU_MCP_KUBECONFIG", "/nonexistent/kubeconfig")
    result = await call(make_app(None, "ecc-dbe-xid48"), "get_node_timeline")
    unavailable = result.structured_content["unavailable"]
    assert not [k for k, why in unavailable.items() if why.startswith("NotSupported")]
    assert set(unavailable) == {"kubernetes"}
    assert sum(len(c.text) for c in result.content) < 4096
    full = await call(make_app(None, "ecc-dbe-xid48"), "get_node_timeline", {"detail": "full"})
    assert any(why.startswith("NotSupported") for why in full.structured_content["unavailable"].values())
