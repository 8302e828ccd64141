"""Tool-argument fuzzing with hypothesis, for every tool: invalid input is a clear tool error."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

APP = AgentApp(Settings(nvml_mode="mock", profile="h100-sxm5-80gb-x8", log_level="ERROR"))
TOOLS = {t.name: t for t in anyio.run(APP.server.list_tools)}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_arguments_give_a_result_or_a_clear_tool_error(tool, data):
    schema = TOOLS[tool].input_schema
    names = list(schema.get("properties", {})) + ["unexpected_argument"]
    arguments = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)))
    try:
        result = anyio.run(APP.server.call_tool, tool, arguments)
    except UnexpectedToolError as exc:  # a crash inside the tool
        raise AssertionError(f"{tool}({arguments!r}) crashed: {exc.__cause__!r}") from exc
    except ToolError as exc:
        message = str(exc)
        assert message and len(message) < 4000, message[:200]
        return
    assert result is not None
