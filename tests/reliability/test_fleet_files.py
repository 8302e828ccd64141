"""Issue 20 item 8: malformed, oversized, deeply nested or alias-bomb scenario and profile files are
refused with a FleetError naming the file, fast and in bounded memory, never with a traceback."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import pytest

from k8s_gpu_mcp.gpu.fleet import MAX_FILE_BYTES, FleetError, build_mock_node
from tests.http.conftest import child_env

BOUND_S = 5.0
ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)
)

SCENARIOS = {
    "binary.yaml": (b"\xff\xfe\x00garbage", "not UTF-8"),
    "huge.json": (b"[" + b"0," * (MAX_FILE_BYTES // 2) + b"0]", "larger than"),
    "deep.json": (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
    "deep.yaml": (b"a: " + b"[" * 50_000 + b"]" * 50_000, "nested deeper"),
    "bomb.yaml": (ALIAS_BOMB.encode(), "aliases"),
    "top-list.yaml": (b"- 1\n- 2\n", "mapping at the top level"),
    "gpus-list.yaml": (b"gpus: [1, 2]\n", "wrong type or shape"),
    "overlay-int.yaml": (b"gpus: {0: 5}\n", "wrong type or shape"),
    "errors-list.yaml": (b"nvml_errors: [a]\n", "wrong type or shape"),
    "nvlinks-bad.yaml": (b"gpus: {0: {nvlinks: {x: {}}}}\n", "wrong type or shape"),
    "kernel-log-int.yaml": (b"kernel_log: 7\n", "wrong type or shape"),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_malformed_scenarios_are_clear_errors(tmp_path, name):
    data, message = SCENARIOS[name]
    path = tmp_path / name
    path.write_bytes(data)
    start = time.monotonic()
    with pytest.raises(FleetError, match=message) as err:
        build_mock_node("h100-sxm5-80gb-x8", str(path), "h100-sxm5-80gb-x8")
    assert time.monotonic() - start < BOUND_S
    assert str(path) in str(err.value) and len(str(err.value)) < 1000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[1, 2]", "a mapping with a 'gpus' list"),
        (b'{"gpus": [1]}', "must be a mapping"),
        (b"\x80", "not UTF-8"),
        (b"[" * 100_000, "nested deeper"),
    ],
)
def test_malformed_profiles_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(FleetError, match=message):
        build_mock_node(str(path), None, "h100-sxm5-80gb-x8")


def test_an_overlong_scenario_path_is_a_clear_error():
    with pytest.raises(FleetError, match="File name too long|not found"):
        build_mock_node(None, "x" * 300, "h100-sxm5-80gb-x8")


def test_the_cli_refuses_an_alias_bomb_in_bounded_memory_without_a_traceback(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)  # 10^10 nodes once expanded
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "k8s_gpu_mcp", "call", "get_gpu_inventory", "--scenario", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    elapsed = time.monotonic() - start
    peak_mib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    assert proc.returncode == 2 and "aliases" in proc.stderr and "Traceback" not in proc.stderr
    assert elapsed < 30 and peak_mib < 300, (elapsed, peak_mib)


def test_bundled_scenarios_still_load():
    from k8s_gpu_mcp.gpu.fleet import list_scenarios

    for name in list_scenarios():
        assert build_mock_node(None, name, "h100-sxm5-80gb-x8").state["gpus"]
    assert json.dumps(build_mock_node("t4", None, "t4").state)
