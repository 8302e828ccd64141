from __future__ import annotations

import pytest

from tests.conftest import call


@pytest.mark.anyio
async def test_idle_h100_is_not_throttling_and_thresholds_come_from_nvml(make_app):
    app = make_app()
    data = (await call(app, "get_gpu_telemetry", {"gpus": [0], "detail": "full"})).structured_content
    gpu = data["gpus"][0]
    profile_gpu = app.backend.mock.state["gpus"][0]
    t = gpu["temperature"]
    assert t["current_c"] == profile_gpu["temperature"]["gpu"]
    assert t["slowdown_c"] == profile_gpu["temperature"]["thresholds"]["slowdown"]
    assert t["headroom_to_slowdown_c"] == t["slowdown_c"] - t["current_c"]
    assert gpu["throttling"]["active"] is False and gpu["throttling"]["category"] == "none"
    assert gpu["power"]["limit_w"] == 700.0
    assert gpu["fan_percent"] is None and gpu["unavailable"]["fan_percent"].startswith("NotSupported")
    assert data["source"]["mock"] is True


@pytest.mark.anyio
async def test_thermal_scenario_is_interpreted(make_app):
    app = make_app(profile=None, scenario="thermal-slowdown")
    gpu = (await call(app, "get_gpu_telemetry", {"gpus": 3, "detail": "full"})).structured_content["gpus"][0]
    slowdown = app.backend.mock.state["gpus"][3]["temperature"]["thresholds"]["slowdown"]
    th = gpu["throttling"]
    assert th["active"] is True and th["category"] == "thermal"
    assert th["explanation"] == (
        f"Throttling: Active, HW thermal slowdown, HW slowdown: SM 1290 of 1980 MHz at 91 C (slowdown at {slowdown} C)"
    )
    assert gpu["clock_event_reasons"] == ["hw_slowdown", "hw_thermal_slowdown"]


@pytest.mark.anyio
async def test_lost_gpu_telemetry_is_unknown_not_healthy(make_app):
    app = make_app(scenario={"gpus": {"1": {"lost": True}}})
    gpu = (await call(app, "get_gpu_telemetry", {"gpus": [1], "detail": "full"})).structured_content["gpus"][
        0
    ]
    assert gpu["lost"] is True and gpu["throttling"]["active"] is None and gpu["temperature"] is None


@pytest.mark.anyio
async def test_unreadable_reasons_make_throttling_unknown(make_app):
    app = make_app(
        scenario={"gpus": {"0": {"nvml_errors": {"nvmlDeviceGetCurrentClocksEventReasons": "NoPermission"}}}}
    )
    gpu = (await call(app, "get_gpu_telemetry", {"gpus": [0], "detail": "full"})).structured_content["gpus"][
        0
    ]
    assert gpu["throttling"]["active"] is None
    assert "NoPermission" in gpu["throttling"]["explanation"]


@pytest.mark.anyio
async def test_bad_gpu_type_is_a_tool_error(make_app):
    result = await call(make_app(), "get_gpu_telemetry", {"gpus": [{"index": 1}]})
    assert result.is_error
