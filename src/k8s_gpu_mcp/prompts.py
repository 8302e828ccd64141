"""MCP prompts: guided SRE workflows. Each names the tools to call, in order, and what to conclude.

XID facts come from the catalog data (``xid/catalog.json``), never from a hand-written table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

MOCK_NOTE = (
    "Every result has `source`; if `source.mock` is true, say clearly that the data is a simulated fleet "
    "(profile and scenario named there), not the real node. A null field is unknown, not healthy: read "
    "its reason in `unavailable`."
)


def xid_reference() -> str:
    """Fatal and Critical XIDs with NVIDIA's bucket and our action, straight from the catalog."""
    from k8s_gpu_mcp.xid.catalog import catalog

    rows = [
        f"- XID {i.code} {i.name}: {i.severity}; {i.sre_action} (NVIDIA bucket {i.immediate_bucket or 'none'})"
        for i in sorted(catalog().values(), key=lambda i: i.code)
        if i.severity in ("Fatal", "Critical")
    ]
    app_caused = ", ".join(
        str(i.code) for i in sorted(catalog().values(), key=lambda i: i.code) if i.origin == "application"
    )
    return "\n".join(rows) + f"\nOften caused by the application rather than the hardware: XIDs {app_caused}."


SUMMARY_NOTE = (
    "Every node tool answers with its summary by default: `status` and `action` first, then `problems` "
    "(only the GPUs that are not healthy, each with its reason, evidence and action; `same_as` points at "
    "a GPU whose problem it repeats), `counts`, and `unavailable` (the checks that could not be made). "
    'Ask detail="full" only for the one GPU whose every reading you need, with gpus=[its index].'
)

# The gpu-triage prompt's calls, in order: (tool, arguments, what to read). Arguments naming the
# node are filled in; tests/test_prompts_resources.py runs these steps and bounds their total size.
TRIAGE_STEPS: list[tuple[str, dict[str, str], str]] = [
    ("get_gpu_health", {}, "the node's status and action, then each GPU that is not healthy"),
    ("analyze_xid_errors", {"since": "24h"}, "the kernel's XID history behind any warning or failure"),
    ("get_gpu_telemetry", {}, "a GPU that is slow but has no XID: its problem and its readings line"),
    ("inspect_topology", {}, "multi-GPU jobs that hang or crawl: the topo -m matrix and the findings"),
    ("snapshot_ecc", {}, "memory errors: the ECC counters, retired pages and row-remap verdict"),
    ("list_gpu_processes", {}, "who holds each GPU and whether any process is a zombie"),
    ("describe_gpu_node", {"node": "{node}"}, "if the cluster API is reachable: labels, taints and GPU pods"),
]


def _call(tool: str, args: dict[str, str], node: str) -> str:
    shown = ", ".join(f'{k}="{v.format(node=node)}"' for k, v in args.items())
    return f"{tool}({shown})"


def triage_calls(node: str) -> list[tuple[str, dict[str, str]]]:
    """The gpu-triage prompt's tool calls for ``node``, as an MCP client would make them."""
    return [(tool, {k: v.format(node=node) for k, v in args.items()}) for tool, args, _ in TRIAGE_STEPS]


def gpu_triage(node: str) -> str:
    steps = "\n".join(
        f"{n}. Call {_call(tool, args, node)}: {why}." for n, (tool, args, why) in enumerate(TRIAGE_STEPS, 1)
    )
    return f"""Triage the NVIDIA GPUs on Kubernetes node {node}.

{steps}

{SUMMARY_NOTE}
Conclude with one sentence per unhealthy GPU (index, what is wrong, the evidence) and the single node
action, the most severe that applies: none, restart the workload, reset a GPU, or drain the node.
{MOCK_NOTE}"""


def diagnose_xid_errors(since: str = "24h") -> str:
    return f"""Diagnose the NVIDIA XID errors on this node since {since}.

1. Call analyze_xid_errors(since="{since}"). Read `status`, `action`, and each GPU's `problems` entry;
   detail="full" adds each event's kernel line, pid and bucket when you need them.
2. For each code, use the event's `sre_action` and `bucket`: they already account for the message text
   (XID 45 caused by an earlier XID, 48 next to 63/64, the XID 74 and 144-150 register decode, 154's
   recovery action), so do not replace them with an action per number.
3. If an event is flagged as often application-caused, check the named process before blaming hardware.
4. Read each XID entry with the resource xid://catalog/{{code}} when you need more detail.

Reference from the XID catalog (Fatal and Critical codes):
{xid_reference()}

Conclude with the node status, the GPUs involved (index and PCI bus id) and the action.
{MOCK_NOTE}"""


def gpu_health_check(node: str) -> str:
    return f"""Run a health check of the GPUs on node {node}.

1. Call get_gpu_health(since="24h"). Report the node's status and action, and for each GPU in
   `problems` its status, reason and evidence; the GPUs in `healthy_gpus` passed every check.
2. For any GPU below healthy, call snapshot_ecc(gpus=[index]) and get_gpu_telemetry(gpus=[index]) to
   confirm; get_gpu_health(detail="full", gpus=[index]) adds its 0-100 score and every reason.
3. Conclude: is each GPU fit to run work? Give the node status and the SRE action.
{SUMMARY_NOTE}
{MOCK_NOTE}"""


def investigate_stuck_job(pod: str, namespace: str = "default") -> str:
    return f"""Find out why the GPU job {namespace}/{pod} is stuck or slow.

1. Call get_pod_gpu_allocation for the pod's node (find the node with describe_gpu_node or the pod's
   spec) to learn which GPUs the pod holds (UUIDs when known).
2. Call analyze_xid_errors(since="24h", gpus=[those GPUs]). A Fatal XID (for example 48, a double-bit
   ECC error, or 79, a GPU fallen off the bus) explains a hang: the answer is to drain the node.
3. Call get_gpu_telemetry(gpus=[those GPUs]): thermal or power throttling explains slowness.
4. For multi-GPU jobs, call inspect_topology: an inactive NVLink or unsupported P2P makes NCCL fall back
   to slower paths and can hang collectives.
5. Call list_gpu_processes: a zombie holding GPU memory can starve the job.

Conclude with the cause, the evidence (tool, GPU, numbers) and the action for the job and the node.
{MOCK_NOTE}"""


def zombie_hunt(node: str) -> str:
    return f"""Hunt for zombie GPU processes on node {node}: GPU memory held while no pod runs.

1. Call list_gpu_processes. Its `problems` are the GPUs with a zombie or memory no process accounts
   for, with the evidence; `processes` has one line per process.
2. For each zombie, call list_gpu_processes(gpus=[its GPU], detail="full") and report pid, command,
   container and pod, GPU and the memory it holds.
3. Only if the agent runs with --mode=operator and a human agrees: kill_gpu_process(pid, dry_run=true)
   first to show the plan, then with confirmation. If memory stays held with no process, reset_gpu
   (dry_run first) is the remedy.

Conclude with what holds the memory and the safe next step. Never act without the human's approval.
{MOCK_NOTE}"""


PROMPTS: dict[str, tuple[Callable[..., str], str, str]] = {
    "gpu-triage": (
        gpu_triage,
        "GPU triage for a node",
        "Which GPUs on a node are unhealthy, why, and what to do",
    ),
    "diagnose-xid-errors": (
        diagnose_xid_errors,
        "Diagnose XID errors",
        "Read the kernel's XID errors since a time, with NVIDIA's catalog, and decide the action",
    ),
    "gpu-health-check": (gpu_health_check, "GPU health check", "Is each GPU on the node fit to run work?"),
    "investigate-stuck-job": (
        investigate_stuck_job,
        "Why is this GPU job stuck?",
        "Trace a stuck or slow GPU pod to XIDs, throttling, topology or zombies on its GPUs",
    ),
    "zombie-hunt": (
        zombie_hunt,
        "Hunt zombie GPU processes",
        "Find processes holding GPU memory with no live pod",
    ),
}


def register(app: AgentApp) -> None:
    for name, (fn, title, description) in PROMPTS.items():
        app.server.prompt(name=name, title=title, description=description)(fn)
