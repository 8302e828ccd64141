from k8s_gpu_mcp.diagnose.throttle import ThrottleInputs, decode_reasons, interpret
from k8s_gpu_mcp.gpu.nvml_constants import CLOCK_EVENT_REASONS, clock_event_mask


def test_decode_names_every_known_bit_and_keeps_unknown_bits():
    mask = CLOCK_EVENT_REASONS["sw_power_cap"] | CLOCK_EVENT_REASONS["hw_thermal_slowdown"] | 0x8000
    assert decode_reasons(mask) == ["sw_power_cap", "hw_thermal_slowdown", "unknown_0x8000"]
    assert decode_reasons(0) == []


def test_clock_event_mask_round_trips_and_rejects_typos():
    assert decode_reasons(clock_event_mask(["hw_slowdown", "sync_boost"])) == ["hw_slowdown", "sync_boost"]
    try:
        clock_event_mask(["hw_thermal"])
    except ValueError as exc:
        assert "hw_thermal_slowdown" in str(exc)
    else:
        raise AssertionError("typo accepted")


def test_hw_thermal_slowdown_explanation_cites_clock_temperature_and_nvml_threshold():
    t = interpret(
        ThrottleInputs(mask=0x48, sm_clock_mhz=1290, max_sm_clock_mhz=1980, temperature_c=91, slowdown_c=87)
    )
    assert t.active is True
    assert t.category == "thermal"
    assert t.causes == ["hw_slowdown", "hw_thermal_slowdown"]
    assert (
        t.explanation
        == "Throttling: Active, HW thermal slowdown, HW slowdown: SM 1290 of 1980 MHz at 91 C (slowdown at 87 C)"
    )


def test_power_cap_reports_draw_against_limit():
    t = interpret(
        ThrottleInputs(mask=0x4, sm_clock_mhz=1600, max_sm_clock_mhz=1980, power_w=699.4, power_limit_w=700)
    )
    assert (t.active, t.category) == (True, "power")
    assert "SM 1600 of 1980 MHz drawing 699 of 700 W" in t.explanation
    assert t.expected and "normal under load" in t.expected


def test_idle_is_not_throttling():
    t = interpret(ThrottleInputs(mask=0x1, sm_clock_mhz=345, max_sm_clock_mhz=1980))
    assert (t.active, t.category, t.causes) == (False, "none", [])
    assert "idle" in t.explanation


def test_unreadable_mask_is_unknown_not_healthy():
    t = interpret(
        ThrottleInputs(mask=None, unreadable_reason="NotSupported: nvmlDeviceGetCurrentClocksEventReasons")
    )
    assert t.active is None and t.category is None
    assert "Unknown" in t.explanation and "NotSupported" in t.explanation


def test_categories_follow_severity_order():
    cases = {
        0x80: "power",
        0x8: "hw_slowdown",
        0x20: "thermal",
        0x10: "sync_boost",
        0x2: "app_clocks",
        0x100: "other",
    }
    for mask, category in cases.items():
        assert interpret(ThrottleInputs(mask=mask)).category == category, hex(mask)
