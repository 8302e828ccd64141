from __future__ import annotations

import pytest

from k8s_gpu_mcp.cli import build_parser, settings_from


def test_flags_win_over_env_which_win_over_defaults():
    args = build_parser().parse_args(["serve", "--mode", "operator"])
    s = settings_from(
        args, {"K8S_GPU_MCP_MODE": "read-only", "K8S_GPU_MCP_NVML_MODE": "mock", "K8S_GPU_MCP_PORT": "9000"}
    )
    assert (s.mode, s.nvml_mode, s.port, s.transport) == ("operator", "mock", 9000, "stdio")


def test_bad_env_value_fails_clearly():
    args = build_parser().parse_args(["serve"])
    with pytest.raises(SystemExit, match="K8S_GPU_MCP_MODE='admin' is not one of read-only, operator"):
        settings_from(args, {"K8S_GPU_MCP_MODE": "admin"})


def test_help_documents_every_env_var(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    out = capsys.readouterr().out
    for var in (
        "K8S_GPU_MCP_MODE",
        "K8S_GPU_MCP_NVML_MODE",
        "K8S_GPU_MCP_PROFILE",
        "K8S_GPU_MCP_SCENARIO",
        "K8S_GPU_MCP_LOG_LEVEL",
        "K8S_GPU_MCP_TRANSPORT",
    ):
        assert var in out
