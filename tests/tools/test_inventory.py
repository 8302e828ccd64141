from __future__ import annotations

import pytest

from tests.conftest import call


@pytest.mark.anyio
async def test_inventory_on_h100_profile(make_app):
    app = make_app()
    result = await call(app, "get_gpu_inventory", {"detail": "full"})
    assert not result.is_error
    data = result.structured_content
    assert data["gpu_count"] == 8 and len(data["gpus"]) == 8
    gpu = data["gpus"][0]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert gpu["memory_total_mib"] == 81559 and gpu["nvlink_count"] == 18
    assert gpu["power_max_limit_w"] == 700.0 and gpu["power_default_limit_w"] == 700.0
    assert gpu["pci_bus_id"].endswith(".0") and gpu["pci_bus_id_short"] == gpu["pci_bus_id"][4:-2].lower()
    assert gpu["mig_mode_current"] is False and gpu["persistence_mode"] is True
    src = data["source"]
    assert src["backend"] == "mock" and src["mock"] is True and src["profile"] == "h100-sxm5-80gb-x8"
    assert src["node"] == "gpu-node-test" and src["driver_version"] and src["cuda_version"]


@pytest.mark.anyio
async def test_selection_by_uuid_and_bus_id(make_app):
    app = make_app()
    refs = app.backend.adapter.gpus()
    result = await call(
        app, "get_gpu_inventory", {"gpus": [refs[5].uuid, refs[2].short_bus_id, 0], "detail": "full"}
    )
    assert [g["index"] for g in result.structured_content["gpus"]] == [5, 2, 0]


@pytest.mark.anyio
@pytest.mark.parametrize("bad", [[42], ["GPU-nope"], [], [True], [1.5], {"x": 1}])
async def test_bad_selectors_are_tool_errors_listing_valid_gpus(make_app, bad):
    result = await call(make_app(), "get_gpu_inventory", {"gpus": bad, "detail": "full"})
    assert result.is_error
    text = result.content[0].text
    assert "valid GPUs" in text or ("argument 'gpus'" in text and "valid: GPU indexes" in text)
    assert "validation error" not in text and "pydantic" not in text


@pytest.mark.anyio
async def test_unknown_gpu_error_lists_choices(make_app):
    result = await call(make_app(), "get_gpu_inventory", {"gpus": [42], "detail": "full"})
    assert "unknown GPU 42" in result.content[0].text and "0 (GPU-" in result.content[0].text


@pytest.mark.anyio
async def test_lost_gpu_is_listed_as_lost(make_app):
    app = make_app(scenario={"gpus": {"4": {"lost": True}}})
    gpus = (await call(app, "get_gpu_inventory", {"detail": "full"})).structured_content["gpus"]
    assert gpus[4]["lost"] is True and "GpuIsLost" in gpus[4]["unavailable"]["*"]
    assert gpus[3]["lost"] is False


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["a100-sxm4-40gb-x8", "l40s", "t4", "a100-sxm4-80gb-mig"])
async def test_inventory_on_every_required_profile(make_app, profile):
    data = (await call(make_app(profile=profile), "get_gpu_inventory", {"detail": "full"})).structured_content
    assert data["gpus"] and all(g["memory_total_mib"] for g in data["gpus"])
    if profile == "a100-sxm4-80gb-mig":
        assert data["gpus"][0]["mig_mode_current"] is True
    if profile in ("l40s", "t4"):
        assert data["gpus"][0]["nvlink_count"] == 0


@pytest.mark.anyio
async def test_tools_publish_schemas_and_annotations(make_app):
    from mcp.client import Client

    async with Client(make_app().server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("get_gpu_inventory", "get_gpu_telemetry"):
        assert tools[name].output_schema and tools[name].input_schema
        assert tools[name].annotations.read_only_hint is True
        assert tools[name].annotations.idempotent_hint is True
