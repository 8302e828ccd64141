"""Start-up as instructions counted by callgrind: the agent to its first get_gpu_health answer, next to
the minimal SDK server to its first ping.

Wall-clock start-up on a shared 2-core machine moves 5-10% between runs, more than most changes to it;
an instruction count moves by under 0.1% (PYTHONHASHSEED fixed), so this section is how to judge a
start-up change.
The goal stays the wall-clock one (cold_start, first_answer). Each workload runs in one process:
Python start, the SDK import, the server's own start, one tool call through ``MCPServer.call_tool``
(no stdio, which both servers share). Run it through ``make bench``, which compiles the bytecode first:
source compiled at every start would add about 1%. Needs valgrind; without it the section says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any

TOOL = "get_gpu_health"
# run.AGENT's arguments, not imported from run.py: the counted process must not import the bench harness
AGENT_ARGS = ["serve", "--nvml-mode", "mock", "--profile", "h100-sxm5-80gb-x8", "--log-level", "WARNING"]


def agent_workload() -> None:
    import anyio

    from k8s_gpu_mcp import cli
    from k8s_gpu_mcp.server import AgentApp

    app = AgentApp(cli.settings_from(cli.build_parser("serve").parse_args(AGENT_ARGS)))
    try:
        anyio.run(app.server.call_tool, TOOL, {})
    finally:
        app.close()


def minimal_workload() -> None:
    import anyio
    import minimal_server  # beside this file, which is on sys.path as the script run

    anyio.run(minimal_server.server.call_tool, "ping", {"value": 1})


def count(which: str) -> subprocess.Popen[str]:
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, which]
    env = {**os.environ, "PYTHONHASHSEED": "0", "NODE_NAME": "bench-node"}
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def collected(proc: subprocess.Popen[str]) -> int:
    _, err = proc.communicate()
    match = re.search(r"Collected : (\d+)", err)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"callgrind run failed (rc {proc.returncode}): {err[-400:]}")
    return int(match.group(1))


def run() -> dict[str, Any]:
    if shutil.which("valgrind") is None:
        return {"measured": "no: valgrind is not installed on this machine"}
    agent, floor = count("agent"), count("minimal")  # one per core
    a, f = collected(agent), collected(floor)
    return {
        "workload": f"process start to the first {TOOL} answer (mock H100 x8) / to the minimal server's first ping",
        "agent_instructions_m": round(a / 1e6, 1),
        "minimal_sdk_server_instructions_m": round(f / 1e6, 1),
        "ratio": round(a / f, 3),
    }


if __name__ == "__main__":
    {"agent": agent_workload, "minimal": minimal_workload}[sys.argv[1]]()
