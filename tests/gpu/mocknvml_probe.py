"""Run every read-only tool in-process on real ``nvidia-ml-py`` over NVIDIA's mock NVML library.

Run by ``tests/gpu/test_mocknvml.py`` in a fresh process per config: ctypes loads one NVML library
per process and the mock reads ``MOCK_NVML_CONFIG`` at init. The caller sets ``LD_LIBRARY_PATH``
(so the standard name resolves to the mock, even on a machine with a driver) and
``MOCK_NVML_CONFIG``. Prints one JSON object: the library that was loaded, and per tool its
structured result or its error text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import anyio


def loaded_nvml() -> list[str]:
    """Paths of every libnvidia-ml mapped into this process (proves which library answered)."""
    maps = Path("/proc/self/maps").read_text().splitlines()
    return sorted({line.split()[-1] for line in maps if "libnvidia-ml" in line})


async def call_tools(app: Any) -> dict[str, Any]:
    from mcp.client import Client

    out: dict[str, Any] = {}
    async with Client(app.server) as client:
        tools = (await client.list_tools()).tools
        for tool in sorted(tools, key=lambda t: t.name):
            if not (tool.annotations and tool.annotations.read_only_hint):
                continue
            required = (tool.input_schema or {}).get("required", [])
            args = {"node": os.environ["NODE_NAME"], "gpu": 0}
            args = {k: v for k, v in args.items() if k in required}  # only what the tool requires
            if "detail" in (tool.input_schema or {}).get("properties", {}):
                args["detail"] = "full"  # every reading, for the comparison with the config
            try:
                result = await client.call_tool(tool.name, args)
            except Exception:  # the client raising is what the test looks for: record it
                out[tool.name] = {"exception": traceback.format_exc()}
                continue
            text = "".join(getattr(c, "text", "") for c in result.content)
            out[tool.name] = {
                "is_error": bool(result.is_error),
                "structured": result.structured_content,
                "text": text[:2000] if result.is_error else "",
            }
        # the mock raises its XID events on the first device call after start: by now, long past
        again = await client.call_tool("analyze_xid_errors", {"detail": "full"})
        out["analyze_xid_errors (after the other tools)"] = {
            "is_error": bool(again.is_error),
            "structured": again.structured_content,
            "text": "",
        }
    return out


def main() -> int:
    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.server import AgentApp

    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    os.environ.setdefault("NODE_NAME", "mocknvml-node")
    report: dict[str, Any] = {}
    try:
        app = AgentApp(Settings(nvml_mode="real"))
    except BaseException:
        report["start_error"] = traceback.format_exc()
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    try:
        report["library"] = loaded_nvml()
        time.sleep(1.0)  # the watcher thread registers for events before the first tool call
        report["tools"] = anyio.run(call_tools, app)
        watcher = app.xid_watcher
        report["watcher_events"] = (
            [dataclasses.asdict(e) for e in watcher.events()] if watcher is not None else None
        )
    finally:
        app.close()
    sys.stdout.write(json.dumps(report, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
