#!/usr/bin/env python3
"""A scripted stand-in for kubectl, for the syringe's unit tests (the e2e tier uses the real one).

FAKE_KUBECTL_STATE is a directory: calls.jsonl records every argv, pod.json holds the "debugger pod".
FAKE_KUBECTL_SCENARIO picks the behaviour: ok, no-node, node-forbidden, no-create, no-delete,
unreachable, image-pull, stuck, logs-fallback, crash, ignore-eof (the agent never sees stdin's EOF).
"""

import json
import os
import sys
import time
from pathlib import Path

state = Path(os.environ["FAKE_KUBECTL_STATE"])
scenario = os.environ.get("FAKE_KUBECTL_SCENARIO", "ok")
argv = sys.argv[1:]
with (state / "calls.jsonl").open("a") as f:
    f.write(json.dumps(argv) + "\n")

# drop global flags
args: list[str] = []
it = iter(argv)
for a in it:
    if a in ("--kubeconfig", "--context", "-n"):
        next(it)
    else:
        args.append(a)

if scenario == "unreachable":
    sys.stderr.write("Unable to connect to the server: dial tcp 10.0.0.1:6443: connect: connection refused\n")
    sys.exit(1)


def pod(waiting: str | None = None, running: bool = False) -> dict:
    session = next(a.split("=", 2)[2] for a in argv if a.startswith("--env=K8S_GPU_MCP_SESSION="))
    node = next(a for a in argv if a.startswith("node/")).split("/", 1)[1]
    state_: dict = {}
    if waiting:
        state_ = {"waiting": {"reason": waiting, "message": "failed to pull image: not found"}}
    if running:
        state_ = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    return {
        "metadata": {"name": f"node-debugger-{node}-abcde", "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "debugger", "env": [{"name": "K8S_GPU_MCP_SESSION", "value": session}]}],
        },
        "status": {
            "phase": "Running" if running else "Pending",
            "containerStatuses": [{"name": "debugger", "state": state_}],
        },
    }


if args[:2] == ["get", "node"]:
    if scenario == "no-node":
        sys.stderr.write(f'Error from server (NotFound): nodes "{args[2]}" not found\n')
        sys.exit(1)
    if scenario == "node-forbidden":
        sys.stderr.write(
            f'Error from server (Forbidden): nodes "{args[2]}" is forbidden: User "viewer" cannot get resource "nodes"\n'
        )
        sys.exit(1)
    sys.stdout.write(f"node/{args[2]}" + "\n")
elif args[:2] == ["auth", "can-i"]:
    denied = {"no-create": ("create", "pods"), "no-delete": ("delete", "pods")}.get(scenario)
    if denied == (args[2], args[3]):
        sys.stdout.write("no" + "\n")
        sys.exit(1)
    sys.stdout.write("yes" + "\n")
elif args[:1] == ["debug"]:
    for a in args:
        if a.startswith("--custom="):
            (state / "custom.json").write_text(Path(a.split("=", 1)[1]).read_text())
    if scenario in ("ok", "no-delete", "logs-fallback", "crash", "ignore-eof"):
        (state / "pod.json").write_text(json.dumps(pod(running=True)))
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        if scenario == "ignore-eof":  # a kubectl stream that does not pass the EOF on
            time.sleep(60)
        if scenario == "logs-fallback":
            sys.stderr.write("warning: couldn't attach to pod/x, falling back to streaming logs: exit 3\n")
            sys.stderr.flush()
            time.sleep(1.0)  # kubectl fetches the logs over HTTP first
            sys.stdout.write("LOG REPLAY THAT IS NOT MCP\n")
            sys.stdout.flush()
            sys.exit(1)
        sys.exit(3 if scenario == "crash" else 0)
    if scenario == "image-pull":
        (state / "pod.json").write_text(json.dumps(pod(waiting="ErrImagePull")))
    if scenario == "stuck":
        (state / "pod.json").write_text(json.dumps(pod(waiting="ContainerCreating")))
    time.sleep(60)
elif args[:2] == ["get", "pods"]:
    p = state / "pod.json"
    items = [json.loads(p.read_text())] if p.exists() else []
    sys.stdout.write(json.dumps({"items": items}) + "\n")
elif args[:2] == ["delete", "pod"]:
    (state / "deleted").write_text(args[2])
else:
    sys.stderr.write(f"fake kubectl: unexpected {args}\n")
    sys.exit(2)
