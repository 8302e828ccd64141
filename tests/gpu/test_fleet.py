from __future__ import annotations

import json

import pytest

from k8s_gpu_mcp.gpu.fleet import FleetError, build_mock_node, list_profiles, list_scenarios, load_profile


def write(tmp_path, data, name="s.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_required_profiles_are_bundled():
    for name in ("h100-sxm5-80gb-x8", "a100-sxm4-40gb-x8", "l40s", "t4", "a100-sxm4-80gb-mig"):
        assert name in list_profiles()


def test_scenario_overlays_one_gpu_and_keeps_the_rest(tmp_path):
    path = write(
        tmp_path,
        {"gpus": {"3": {"temperature": {"gpu": 91}, "clock_event_reasons": ["hw_thermal_slowdown"]}}},
    )
    node = build_mock_node(None, path, "h100-sxm5-80gb-x8")
    original = load_profile("h100-sxm5-80gb-x8")[1]["gpus"][3]
    gpu3 = node.state["gpus"][3]
    assert gpu3["temperature"]["gpu"] == 91 and gpu3["clock_event_reasons"] == 0x40
    assert gpu3["temperature"]["thresholds"] == original["temperature"]["thresholds"]  # deep merge
    assert node.state["gpus"][2] == load_profile("h100-sxm5-80gb-x8")[1]["gpus"][2]
    assert node.profile_name == "h100-sxm5-80gb-x8" and node.scenario_name == "s"


def test_nvlink_overlay_by_link_index(tmp_path):
    path = write(tmp_path, {"gpus": {"0": {"nvlinks": {"5": {"state": 0, "errors": {"replay": 7}}}}}})
    links = build_mock_node(None, path, "h100-sxm5-80gb-x8").state["gpus"][0]["nvlinks"]
    assert links[5]["state"] == 0 and links[5]["errors"]["replay"] == 7 and links[4]["state"] == 1


def test_kernel_log_lines_are_kept(tmp_path):
    path = write(
        tmp_path, "kernel_log: |\n  [ 1.0] NVRM: Xid (PCI:0000:53:00): 48, pid=1, name=python\n", "s.yaml"
    )
    assert build_mock_node(None, path, "h100-sxm5-80gb-x8").kernel_log == [
        "[ 1.0] NVRM: Xid (PCI:0000:53:00): 48, pid=1, name=python"
    ]


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"gpu": {}}, "unknown keys ['gpu']"),
        ({"gpus": {"9": {}}}, "has GPUs 0..7"),
        ({"gpus": {"x": {}}}, "must be an index"),
        ({"gpus": {"0": {"temp": 1}}}, "unknown keys ['temp']"),
        ({"gpus": {"0": {"nvlinks": {"40": {"state": 0}}}}}, "has 18 links"),
        (
            {"gpus": {"0": {"nvml_errors": {"nvmlDeviceGetFanSpeed": "Broken"}}}},
            "unknown NVML error 'Broken'",
        ),
        ({"gpus": {"0": {"clock_event_reasons": ["hot"]}}}, "unknown clock-event reason"),
        ({"profile": "h9000"}, "unknown profile 'h9000'"),
    ],
)
def test_bad_scenarios_fail_with_a_message_that_says_what_is_valid(tmp_path, scenario, message):
    with pytest.raises((FleetError, ValueError), match=message.replace("[", r"\[").replace("]", r"\]")):
        build_mock_node(None, write(tmp_path, scenario), "h100-sxm5-80gb-x8")


def test_unparseable_scenario_file(tmp_path):
    with pytest.raises(FleetError, match="not valid yaml"):
        build_mock_node(None, write(tmp_path, "gpus: [", "bad.yaml"), "h100-sxm5-80gb-x8")


def test_missing_scenario_names_the_bundled_ones():
    with pytest.raises(FleetError, match="thermal-slowdown"):
        build_mock_node(None, "/nonexistent.yaml", "h100-sxm5-80gb-x8")


def test_every_bundled_scenario_loads():
    for name in list_scenarios():
        assert build_mock_node(None, name, "h100-sxm5-80gb-x8").scenario_name


def test_depth_limit_counts_every_level_scalars_included():
    """MAX_DEPTH levels are accepted and one more refused, whether the deepest thing is a scalar or a
    container (the check walks containers only, so the boundary is worth holding)."""
    from k8s_gpu_mcp.gpu import fleet

    def nested(levels: int, leaf: object) -> object:
        for _ in range(levels - 1):
            leaf = [leaf]
        return leaf

    limit = fleet.MAX_DEPTH
    for ok in (nested(limit, 1), nested(limit, []), nested(limit, {}), nested(limit - 1, {"a": 1})):
        fleet._check_depth(ok, "t")
    for deep in (nested(limit + 1, 1), nested(limit, [1]), nested(limit, {"a": 1}), nested(limit + 1, [])):
        with pytest.raises(fleet.FleetError, match="nested deeper"):
            fleet._check_depth(deep, "t")
