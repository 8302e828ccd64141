"""MCP resources: the node's inventory snapshot and, in mock mode, the fleet's profiles and scenarios.

and the XID catalog entries (``xid://catalog/{code}``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp


def register(app: AgentApp) -> None:
    server = app.server

    @server.resource(
        "gpu://inventory",
        name="gpu-inventory",
        title="GPU inventory snapshot",
        description="This node's GPU inventory (same data as get_gpu_inventory), as JSON",
        mime_type="application/json",
    )
    def inventory() -> str:
        from k8s_gpu_mcp.tools.inventory import collect_inventory

        return collect_inventory(app).model_dump_json()

    @server.resource(
        "xid://catalog/{code}",
        name="xid-catalog",
        title="NVIDIA XID catalog entry",
        description="One XID from NVIDIA's catalog: buckets, derived severity and SRE action",
        mime_type="application/json",
    )
    def xid_catalog_entry(code: str) -> str:
        from dataclasses import asdict

        from mcp.server.mcpserver.exceptions import ResourceNotFoundError

        from k8s_gpu_mcp.tools._common import clip
        from k8s_gpu_mcp.xid.catalog import lookup

        try:
            number = int(code)
        except ValueError:
            raise ResourceNotFoundError(f"XID code must be an integer 1-176, got {clip(code)}") from None
        return json.dumps(asdict(lookup(number)))

    if app.backend.mock is None:
        return

    @server.resource(
        "mock://profiles",
        name="mock-profiles",
        title="Mock fleet profiles",
        description="Profiles the mock fleet can serve (derived from real nvidia-smi captures)",
        mime_type="application/json",
    )
    def profiles() -> str:
        from k8s_gpu_mcp.gpu.fleet import list_profiles, load_profile

        entries = []
        for name in list_profiles():
            data = load_profile(name)[1]
            entries.append(
                {
                    "name": name,
                    "title": data.get("title"),
                    "gpus": len(data["gpus"]),
                    "captures": data.get("captures"),
                }
            )
        active = app.backend.mock.profile_name if app.backend.mock else None
        return json.dumps({"active": active, "profiles": entries})

    @server.resource(
        "mock://scenarios",
        name="mock-scenarios",
        title="Mock fault scenarios",
        description="Bundled fault scenarios (see docs/scenarios.md); pass one with --scenario NAME",
        mime_type="application/json",
    )
    def scenarios() -> str:
        from k8s_gpu_mcp.gpu.fleet import list_scenarios, read_scenario

        entries = []
        for name in list_scenarios():
            data = read_scenario(name)
            entries.append(
                {
                    "name": name,
                    "profile": data.get("profile"),
                    "description": (data.get("description") or "").strip(),
                }
            )
        active = app.backend.mock.scenario_name if app.backend.mock else None
        return json.dumps({"active": active, "scenarios": entries})
