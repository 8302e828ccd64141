"""Where start-up time goes: each stage of the agent's start to its first get_gpu_health answer, next to
the same stages of the minimal SDK server, timed inside fresh processes (median of 5 each, the two interleaved).

The report behind issue 18's start-up figures (docs/architecture.md, Start-up): cold_start and
first_answer say how far the agent is from the minimal server, this section says which part of the
start is the gap. The output-schema stage re-derives the registered tools' schemas with pydantic's
public API, once per tool and once with one generator for all, to show what sharing would save.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench_start_instructions import AGENT_ARGS, TOOL

RUNS = 5


def agent_stages() -> tuple[dict[str, float], dict[str, int]]:
    t0 = time.perf_counter()
    import anyio
    import mcp.server.mcpserver  # noqa: F401
    import mcp.server.stdio  # noqa: F401

    t1 = time.perf_counter()
    from k8s_gpu_mcp import cli
    from k8s_gpu_mcp.server import AgentApp
    from k8s_gpu_mcp.tools import tool_module_names

    t2 = time.perf_counter()
    for name in tool_module_names():
        importlib.import_module(f"k8s_gpu_mcp.tools.{name}")
    t3 = time.perf_counter()

    class TimedApp(AgentApp):
        """AgentApp that keeps the time spent in add_tool (the SDK deriving each tool's schemas)."""

        def __init__(self, settings: Any) -> None:
            self.register_s = 0.0
            self.functions: list[Any] = []
            super().__init__(settings)

        def add_tool(self, fn: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            super().add_tool(fn, **kwargs)
            self.register_s += time.perf_counter() - start
            self.functions.append(fn)

    app = TimedApp(cli.settings_from(cli.build_parser("serve").parse_args(AGENT_ARGS)))
    t4 = time.perf_counter()
    try:
        anyio.run(app.server.call_tool, TOOL, {})
    finally:
        app.close()
    t5 = time.perf_counter()
    per_tool, shared = schema_derivation(app.functions)
    times = {
        "sdk import": t1 - t0,
        "agent base modules": t2 - t1,
        "tool modules": t3 - t2,
        "AgentApp": t4 - t3,
        "of which add_tool (the SDK deriving input and output schemas)": app.register_s,
        f"first {TOOL} call": t5 - t4,
        "re-derive output schemas, one generator per tool": per_tool,
        "re-derive output schemas, one generator for all": shared,
    }
    from pydantic import BaseModel  # already loaded by the SDK; after the timed stages

    classes = own_classes()
    return times, {
        "frozen dataclasses": sum(
            1 for c in classes if dataclasses.is_dataclass(c) and c.__dataclass_params__.frozen
        ),
        "pydantic models": sum(1 for c in classes if issubclass(c, BaseModel)),
    }


def schema_derivation(functions: list[Any]) -> tuple[float, float]:
    from pydantic import BaseModel, TypeAdapter
    from pydantic.json_schema import models_json_schema

    models = [inspect.signature(fn, eval_str=True).return_annotation for fn in functions]
    models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
    t0 = time.perf_counter()
    for model in models:
        TypeAdapter(model).json_schema()  # the mode the SDK asks for
    t1 = time.perf_counter()
    models_json_schema([(model, "validation") for model in models])
    return t1 - t0, time.perf_counter() - t1


def own_classes() -> set[type]:
    """The classes defined by the agent's modules that this process loaded."""
    return {
        value
        for name, module in list(sys.modules.items())
        if name.startswith("k8s_gpu_mcp")
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == name
    }


def minimal_stages() -> tuple[dict[str, float], dict[str, int]]:
    t0 = time.perf_counter()
    import anyio
    import mcp.server.mcpserver  # noqa: F401
    import mcp.server.stdio  # noqa: F401

    t1 = time.perf_counter()
    import minimal_server  # beside this file, which is on sys.path as the script run

    t2 = time.perf_counter()
    anyio.run(minimal_server.server.call_tool, "ping", {"value": 1})
    t3 = time.perf_counter()
    return {"sdk import": t1 - t0, "server and its one tool": t2 - t1, "first ping call": t3 - t2}, {}


def child_stages(which: str) -> tuple[dict[str, float], dict[str, int]]:
    env = {**os.environ, "NODE_NAME": "bench-node"}
    out = subprocess.run(
        [sys.executable, __file__, which], capture_output=True, text=True, env=env, check=True
    )
    times, counts = json.loads(out.stdout.strip().splitlines()[-1])
    return times, counts


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def run() -> dict[str, Any]:
    pairs = [(child_stages("agent"), child_stages("minimal")) for _ in range(RUNS)]  # interleaved: same noise
    agent, floor = median([a[0] for a, _ in pairs]), median([f[0] for _, f in pairs])
    out: dict[str, Any] = {f"minimal: {k}, ms": round(v * 1e3, 1) for k, v in floor.items()}
    out |= {f"agent: {k}, ms": round(v * 1e3, 1) for k, v in agent.items()}
    out |= {f"agent: {k}": v for k, v in pairs[0][0][1].items()}
    stages = ("agent base modules", "tool modules", "AgentApp", f"first {TOOL} call")
    added = sum(agent[k] for k in stages) - floor["server and its one tool"] - floor["first ping call"]
    out["agent's own start over the minimal server's, ms"] = round(added * 1e3, 1)
    out["a quarter of the minimal server's stages (the room 1.25x leaves), ms"] = round(
        0.25 * sum(floor.values()) * 1e3, 1
    )
    out["runs"] = RUNS
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps({"agent": agent_stages, "minimal": minimal_stages}[sys.argv[1]]()) + "\n")
