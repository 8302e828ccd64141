"""The agent registers every tool module at start; destructive tools only in operator mode."""

from __future__ import annotations

import anyio
import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp, ToolsetError
from k8s_gpu_mcp.tools import tool_module_names
from k8s_gpu_mcp.tools._common import DESTRUCTIVE, READ_ONLY

REMEDIATION = {"kill_gpu_process", "reset_gpu", "cordon_node", "uncordon_node", "drain_gpu_node"}


def _listed(app: AgentApp) -> dict:
    return {t.name: t for t in anyio.run(app.server.list_tools)}


@pytest.fixture
def agent(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    apps: list[AgentApp] = []

    def make(mode: str = "read-only") -> AgentApp:
        apps.append(AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR")))  # type: ignore[arg-type]
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def test_every_tool_module_registers_at_start(agent):
    app = agent()
    listed = _listed(app)
    assert set(listed) == set(app.tool_names)
    assert set(app.module_of.values()) == set(tool_module_names()) - {"remediation"}  # operator only
    assert {"get_gpu_health", "analyze_xid_errors", "get_gpu_telemetry"} <= set(listed)


def test_read_only_mode_lists_no_destructive_tool(agent):
    listed = _listed(agent())
    assert not REMEDIATION & set(listed)
    assert all(not t.annotations.destructive_hint for t in listed.values())


def test_operator_mode_lists_the_remediation_tools(agent):
    listed = _listed(agent("operator"))
    assert REMEDIATION <= set(listed)
    assert all(listed[name].annotations.destructive_hint for name in REMEDIATION)


def test_operator_tools_names_exactly_what_the_module_adds_and_read_only_skips_its_import(agent):
    """tools/remediation.py declares its tools so that read-only mode need not import them; the
    declaration must match what its register adds in operator mode, every one destructive."""
    import subprocess
    import sys

    from k8s_gpu_mcp.tools import remediation

    operator = agent("operator")
    added = {name for name, module in operator.module_of.items() if module == "remediation"}
    assert added == set(remediation.OPERATOR_TOOLS)
    listed = _listed(operator)
    assert all(listed[name].annotations.destructive_hint for name in added)
    read_only = agent()
    assert set(read_only.dropped) == set(remediation.OPERATOR_TOOLS)
    probe = (
        "import sys; from k8s_gpu_mcp.config import Settings; from k8s_gpu_mcp.server import AgentApp; "
        "AgentApp(Settings(nvml_mode='mock', log_level='ERROR')).close(); "
        "print(sorted(m for m in sys.modules if m.startswith('k8s_gpu_mcp.tools._')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "_remediation" not in loaded and "_node_ops" not in loaded and "_common" in loaded


def test_the_mode_filter_is_by_annotation_not_by_module(agent):
    """A destructive tool from any module is dropped outside operator mode; a read-only one is kept."""
    app = agent()

    def wipe_something() -> str:
        """A stand-in destructive tool."""
        return "done"

    def look_at_something() -> str:
        """A stand-in read-only tool."""
        return "seen"

    app.add_tool(wipe_something, title="wipe", annotations=DESTRUCTIVE)
    app.add_tool(look_at_something, title="look", annotations=READ_ONLY)
    listed = _listed(app)
    assert "wipe_something" not in listed and "wipe_something" in app.dropped
    assert "look_at_something" in listed


def test_toolsets_limit_the_listed_tools(agent, monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    app = AgentApp(Settings(nvml_mode="mock", toolsets="xid, K8S", log_level="ERROR"))
    try:
        listed = _listed(app)
        assert {app.module_of[name] for name in listed} == {"xid", "cluster"}
        assert {"analyze_xid_errors", "describe_gpu_node"} <= set(listed) and "get_gpu_health" not in listed
    finally:
        app.close()


def test_an_unknown_toolset_is_refused_with_the_valid_names():
    with pytest.raises(
        ToolsetError, match=r"unknown toolset 'gpus'; valid: core, k8s, processes, remediation, xid"
    ):
        AgentApp(Settings(nvml_mode="mock", toolsets="core,gpus"))


def test_every_tool_module_declares_its_toolset():
    import importlib

    for name in tool_module_names():
        assert hasattr(importlib.import_module(f"k8s_gpu_mcp.tools.{name}"), "TOOLSET"), name


async def _call(app: AgentApp, tool: str, arguments: dict) -> tuple[bool, str]:
    from mcp.client import Client

    async with Client(app.server) as client:
        result = await client.call_tool(tool, arguments)
    return bool(result.is_error), result.content[0].text


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        (
            "get_gpu_health",
            {"detail": "bogus"},
            "get_gpu_health: argument 'detail' = 'bogus' is not valid; valid: summary or full (any case)",
        ),
        (
            "analyze_xid_errors",
            {"limit": 0},
            "argument 'limit' = 0 is not valid; valid: an integer >= 1 and <= 5000",
        ),
        (
            "analyze_xid_errors",
            {"min_severity": "bogus"},
            "argument 'min_severity' = 'Bogus' is not valid; valid: Info or Warning or Critical or Fatal (any case)",
        ),
        (
            "get_gpu_telemetry",
            {"gpus": {"a": 1}},
            "argument 'gpus' = {'a': 1} is not valid (not one of the accepted forms); valid: GPU indexes",
        ),
        (
            "verify_gpu_after_reset",
            {},
            "verify_gpu_after_reset: argument 'gpu' is required: GPU index, UUID or PCI bus id",
        ),
        (
            "get_gpu_health",
            {"gpus": [0], "gpu_index": 0},
            "get_gpu_health takes no argument 'gpu_index'; its arguments: gpus, since, detail",
        ),
        ("reset_gpu", {"gpu": 0}, "reset_gpu needs --mode operator"),
        ("no_such_tool", {}, "no tool 'no_such_tool'; tools: analyze_xid_errors,"),
        (
            "get_gpu_health",
            {"since": "2099-01-01T00:00:00Z"},
            "get_gpu_health: since '2099-01-01T00:00:00Z' is in the future",
        ),
        ("get_gpu_inventory", {"gpus": [42]}, "get_gpu_inventory: unknown GPU 42; valid GPUs: 0 (GPU-"),
    ],
)
def test_a_bad_call_is_one_sentence_naming_the_argument_and_what_is_valid(agent, tool, arguments, expected):
    is_error, text = anyio.run(_call, agent(), tool, arguments)
    assert is_error and expected in text, text
    for dump in ("validation error", "errors.pydantic.dev", "Error executing tool", "type=", "\n"):
        assert dump not in text, text
    assert len(text) < 600


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("get_gpu_health", {"detail": "FULL"}),
        ("snapshot_ecc", {"detail": " Summary "}),
        ("analyze_xid_errors", {"min_severity": "fatal"}),
    ],
)
def test_input_enums_are_case_insensitive(agent, tool, arguments):
    is_error, text = anyio.run(_call, agent(), tool, arguments)
    assert not is_error, text


def test_tool_text_content_is_the_structured_content_as_compact_json(agent):
    import json

    from mcp.client import Client

    async def run() -> None:
        async with Client(agent().server) as client:
            result = await client.call_tool("get_gpu_health", {})
        text = result.content[0].text
        assert json.loads(text) == result.structured_content and "\n" not in text and ", " not in text[:40]

    anyio.run(run)


def test_kill_signal_is_read_in_any_case(agent):
    """kill_gpu_process's signal enum, like every input enum: a lower-case word is the same signal."""
    app = agent("operator")
    _, lower = anyio.run(_call, app, "kill_gpu_process", {"pid": 4242, "signal": "kill", "dry_run": True})
    _, upper = anyio.run(_call, app, "kill_gpu_process", {"pid": 4242, "signal": "KILL", "dry_run": True})
    assert "argument 'signal'" not in lower and lower == upper, (lower, upper)


def test_a_tool_another_toolset_serves_says_which_toolsets_this_agent_serves(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    app = AgentApp(Settings(nvml_mode="mock", toolsets="core", log_level="ERROR"))
    try:
        is_error, text = anyio.run(_call, app, "list_gpu_processes", {})
    finally:
        app.close()
    assert is_error and "no tool 'list_gpu_processes' here: this agent serves only --toolsets core" in text
    assert "get_gpu_health" in text  # and the tools it does serve
