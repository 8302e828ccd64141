"""NVML fault-injection matrix: every NVML function the tools call, failing with every error a
failing GPU or an old driver produces. Every tool must still answer, with partial data and a
reason for each missing field, and no exception may escape."""

from __future__ import annotations

import json

import anyio
import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

# NotSupported on a link index means "no such link" in NVML, so an NVLink count of 0 is the honest answer.
NO_SUCH_LINK = {("nvmlDeviceGetNvLinkState", "NotSupported")}
ERRORS = [
    "NotSupported",
    "NoPermission",
    "GpuIsLost",
    "Unknown",
    "Timeout",
    "Uninitialized",
    "FunctionNotFound",
]


def no_arg_tools(app: AgentApp) -> list[str]:
    tools = anyio.run(app.server.list_tools)
    return sorted(t.name for t in tools if not t.input_schema.get("required"))


def full_args(app: AgentApp) -> dict[str, dict[str, str]]:
    """detail=full where a tool has it: summaries leave NotSupported out by design, full keeps it."""
    tools = anyio.run(app.server.list_tools)
    return {
        t.name: {"detail": "full"} if "detail" in t.input_schema.get("properties", {}) else {} for t in tools
    }


def call_all(app: AgentApp, tools: list[str]) -> dict[str, tuple[object, set[str]]]:
    """Each tool's result, with the NVML functions that tool called."""
    fake = app.backend.nvml

    args = full_args(app)

    async def run() -> dict[str, tuple[object, set[str]]]:
        out = {}
        for name in tools:
            fake.calls.clear()
            app.backend.adapter.gpus(refresh=True)
            result = await app.server.call_tool(name, args[name])
            out[name] = (result, set(fake.calls))
        return out

    return anyio.run(run)


@pytest.fixture(scope="module")
def app() -> AgentApp:
    app = AgentApp(Settings(nvml_mode="mock", profile="h100-sxm5-80gb-x8", log_level="ERROR"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def called_functions(app: AgentApp) -> list[str]:
    """The NVML functions the tools actually call, recorded by the fake."""
    called = set()
    for _, calls in call_all(app, no_arg_tools(app)).values():
        called |= calls
    return sorted(name for name in called if name.startswith("nvml"))


def test_the_matrix_covers_the_adapter(called_functions):
    assert len(called_functions) >= 20, called_functions


def test_every_function_times_every_error(app, called_functions):
    fake = app.backend.nvml
    tools = no_arg_tools(app)
    failures = []
    for fn in called_functions:
        for error in ERRORS:
            fake.profile["nvml_errors"] = {fn: error}
            try:
                results = call_all(app, tools)
            except Exception as exc:  # the whole point: nothing escapes
                failures.append(f"{fn}/{error}: exception {exc!r}")
                continue
            for tool, (result, calls) in results.items():
                if result.is_error:
                    failures.append(f"{fn}/{error}: {tool} returned an error: {result.content[0].text[:200]}")
                    continue
                text = json.dumps(result.structured_content)
                if (
                    fn in calls
                    and fn not in text
                    and "GpuIsLost" not in text
                    and (fn, error) not in NO_SUCH_LINK
                ):
                    failures.append(f"{fn}/{error}: {tool} hides the failure (no reason names {fn})")
    fake.profile["nvml_errors"] = {}
    app.backend.adapter.gpus(refresh=True)
    assert not failures, "\n".join(failures[:40]) + f"\n... {len(failures)} in all"
