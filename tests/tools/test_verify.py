"""verify_gpu_after_reset through MCP: each check true, false or null, on the scenarios."""

from __future__ import annotations

import pytest

from tests.conftest import call
from tests.tools.remediation_helpers import host_trees

pytestmark = pytest.mark.anyio


async def verify(app, gpu):
    result = await call(app, "verify_gpu_after_reset", {"gpu": gpu})
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    return data, {c["name"]: c for c in data["checks"]}


async def test_a_healthy_gpu_is_verified_and_says_this_agent_did_not_reset_it(make_app):
    data, checks = await verify(make_app(None, "thermal-slowdown"), 0)
    assert data["outcome"] == "verified" and all(c["ok"] is True for c in checks.values())
    assert checks["retired_pages_pending"]["detail"].startswith("not applicable")  # Hopper remaps rows
    assert data["reset_at"] is None and data["state_before"] is None
    assert "did not reset GPU 0" in data["action"] and "uncordon_node" in data["action"]


async def test_xid48_with_its_pending_remap_fails_on_three_checks(make_app):
    data, checks = await verify(make_app(None, "ecc-dbe-xid48"), 0)
    assert data["outcome"] == "failed"
    failed = {name for name, c in checks.items() if c["ok"] is False}
    assert failed == {"remap_pending", "volatile_uncorrected_ecc", "xids_since_reset"}
    assert "XID 48 x1" in checks["xids_since_reset"]["detail"]
    assert "reset again, or reboot the node" in data["action"]


async def test_links_down_after_a_reset_fail_the_link_check(make_app):
    data, checks = await verify(make_app(None, "nvlink-down-xid74"), 1)
    assert data["outcome"] == "failed" and checks["nvlinks_up"]["ok"] is False
    assert "not up" in checks["nvlinks_up"]["detail"]


async def test_a_lost_gpu_fails_presence_and_nothing_else_is_claimed(make_app):
    data, checks = await verify(make_app(None, "gpu-lost-xid79"), 4)
    assert data["outcome"] == "failed" and list(checks) == ["gpu_present"]
    assert checks["gpu_present"]["ok"] is False and "reboot the node" in data["action"]


async def test_an_unreadable_check_makes_the_status_unknown_not_verified(make_app):
    scenario = {
        "name": "no-remap-read",
        "gpus": {"0": {"nvml_errors": {"nvmlDeviceGetRemappedRows": "NoPermission"}}},
    }
    data, checks = await verify(make_app("h100-sxm5-80gb-x8", scenario), 0)
    assert checks["remap_pending"]["ok"] is None and "NoPermission" in checks["remap_pending"]["detail"]
    assert data["outcome"] == "unknown" and "do not return the GPU to service" in data["action"]


async def test_after_this_agents_reset_the_state_before_is_returned(make_app, tmp_path):
    app = make_app(mode="operator", audit_log=str(tmp_path / "audit.jsonl"), **host_trees(tmp_path))
    reset = (await call(app, "reset_gpu", {"gpu": 1, "confirm": True})).structured_content
    assert reset["outcome"] == "done"
    data, checks = await verify(app, 1)
    assert data["reset_at"] is not None and data["since"] == data["reset_at"]
    assert data["state_before"] == reset["state_before"]
    assert "did not reset" not in data["action"]
