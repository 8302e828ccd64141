"""make demo: the one-minute story, no GPU needed.

"Why is the training job on node-5 stuck?" An MCP client launches the agent (stdio, mock H100 node
with an XID 48 scenario), calls the tools an assistant would call, and prints the journey and the
verdict. Every number printed comes from the agent's structured results.
"""

from __future__ import annotations

import os
import sys
import textwrap

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

SCENARIO = os.environ.get("DEMO_SCENARIO", "ecc-dbe-xid48")


def say(text: str = "", indent: int = 0) -> None:
    prefix = " " * indent
    for line in text.splitlines() or [""]:
        sys.stdout.write(textwrap.fill(line, 100, initial_indent=prefix, subsequent_indent=prefix) + "\n")


async def main() -> int:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"} | {"NODE_NAME": "node-5"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "k8s_gpu_mcp", "serve", "--scenario", SCENARIO, "--log-level", "WARNING"],
        env=env,
    )
    say('User: "Why is the training job on node-5 stuck?"')
    say("Assistant: launching the k8s-gpu-mcp agent on node-5 and looking at the hardware.")
    async with Client(params) as client:
        say(f"  (connected to {client.server_info.name} {client.server_info.version})")

        say("\n-> get_gpu_health")
        health = (await client.call_tool("get_gpu_health", {})).structured_content
        src = health["source"]
        if src["mock"]:
            say(
                f"   source: MOCK data (profile {src['profile']}, scenario {src['scenario']}), node {src['node']}"
            )
        for problem in health["problems"]:
            say(f"   GPU {problem['index']}: {problem['status']}: {problem['reason']}")
            for evidence in problem.get("evidence", [])[:3]:
                say(f"- [{evidence['check']}] {evidence['finding']}", indent=5)

        say("\n-> analyze_xid_errors(since='24h')")
        xids = (await client.call_tool("analyze_xid_errors", {"since": "24h"})).structured_content
        for problem in xids["problems"]:
            for evidence in problem.get("evidence", []):
                say(f"   GPU {problem['index']} [{evidence['status']}]: {evidence['finding']}")
        say(f"   status: {xids['status']}")

        say("\n-> snapshot_ecc")
        ecc = (await client.call_tool("snapshot_ecc", {})).structured_content
        for problem in ecc["problems"]:
            say(f"   GPU {problem['index']}: {problem['status']}")
            for evidence in problem.get("evidence", [])[:1]:  # a same_as entry points at its first GPU
                say(f"- {evidence['finding']}", indent=5)

    say("\nAssistant:")
    say(xids["action"], indent=2)
    say(f"Node status {health['status']}: {health['action']}", indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(anyio.run(main))
