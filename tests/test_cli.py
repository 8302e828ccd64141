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


def test_http_and_gateway_options_from_env_with_types():
    args = build_parser().parse_args(["gateway", "--node-timeout", "2.5"])
    s = settings_from(
        args,
        {
            "K8S_GPU_MCP_INSECURE_NO_AUTH": "true",
            "K8S_GPU_MCP_CONCURRENCY": "64",
            "K8S_GPU_MCP_NODE_TIMEOUT": "9",
            "K8S_GPU_MCP_ALLOWED_HOSTS": "a,b",
        },
    )
    assert (s.insecure_no_auth, s.concurrency, s.node_timeout, s.allowed_hosts) == (True, 64, 2.5, "a,b")
    assert (
        settings_from(build_parser().parse_args(["serve", "--insecure-no-auth"]), {}).insecure_no_auth is True
    )
    with pytest.raises(SystemExit, match="K8S_GPU_MCP_INSECURE_NO_AUTH='maybe' is not a boolean"):
        settings_from(args, {"K8S_GPU_MCP_INSECURE_NO_AUTH": "maybe"})
    with pytest.raises(SystemExit, match="K8S_GPU_MCP_BREAKER_RESET='soon' is not a number"):
        settings_from(args, {"K8S_GPU_MCP_BREAKER_RESET": "soon"})


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        (
            "serve",
            [
                "K8S_GPU_MCP_TOKEN_FILE",
                "K8S_GPU_MCP_TOKEN",
                "K8S_GPU_MCP_TLS_CERT",
                "K8S_GPU_MCP_ALLOWED_HOSTS",
            ],
        ),
        (
            "gateway",
            [
                "K8S_GPU_MCP_AGENTS",
                "K8S_GPU_MCP_NODE_TIMEOUT",
                "K8S_GPU_MCP_AGENT_TOKEN",
                "K8S_GPU_MCP_RETRIES",
            ],
        ),
    ],
)
def test_help_documents_http_and_gateway_env_vars(capsys, command, variables):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    for var in variables:
        assert var in out


def test_a_parser_built_for_one_command_parses_it_as_the_full_parser_does():
    from k8s_gpu_mcp.cli import build_parser

    for argv in (
        ["serve", "--nvml-mode", "mock", "--profile", "a100-sxm4-40gb-x8", "--transport", "http"],
        ["tools", "--json", "--mode", "operator"],
        ["call", "get_gpu_health", "--args", '{"gpus": [0]}', "--log-level", "DEBUG"],
        ["gateway", "--log-level", "INFO"],
    ):
        assert vars(build_parser(argv[0]).parse_args(argv)) == vars(build_parser().parse_args(argv)), argv
