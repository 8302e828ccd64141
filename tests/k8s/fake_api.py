"""A fake Kubernetes API behind a real lightkube Client (httpx2.MockTransport): cheap unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx2

from k8s_gpu_mcp.k8s.client import ApiInfo, KubeApi

SERVER = "https://k8s.test:6443"
UUIDS = [f"GPU-{i:08d}-0000-0000-0000-{i:012d}" for i in range(8)]


def gpu_node(
    name: str = "gpu-node-1", gpus: str = "8", allocatable: str | None = None, **extra: Any
) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": name,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": gpus,
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": extra.pop("spec", {}),
        "status": {
            "capacity": {"cpu": "64", "nvidia.com/gpu": gpus},
            "allocatable": {"cpu": "63", "nvidia.com/gpu": allocatable or gpus},
            "conditions": extra.pop(
                "conditions", [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
            ),
        },
    }


def gpu_pod(
    name: str, node: str, gpus: int | None, ns: str = "ml", phase: str = "Running", **extra: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "x"}
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if "env" in extra:
        container["env"] = extra.pop("env")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": extra.pop("annotations", {})},
        "spec": {"nodeName": node, "containers": [container]},
        "status": {"phase": phase},
    }


def forbidden(
    verb: str, resource: str, user: str = "system:serviceaccount:default:default"
) -> httpx2.Response:
    msg = f'{resource} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "" at the cluster scope'
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": msg,
        "reason": "Forbidden",
        "code": 403,
    }
    return httpx2.Response(403, json=body)


def not_found(resource: str, name: str) -> httpx2.Response:
    msg = f'{resource} "{name}" not found'
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": msg,
        "reason": "NotFound",
        "code": 404,
    }
    return httpx2.Response(404, json=body)


Handler = Callable[[httpx2.Request], httpx2.Response | None]


class FakeCluster:
    """Nodes and pods served on /api/v1; `override` intercepts requests first (errors, outages)."""

    def __init__(
        self,
        nodes: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.pods = pods
        self.events = events or []
        self.override: Handler | None = None
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.override and (resp := self.override(request)) is not None:
            return resp
        path = request.url.path
        query = parse_qs(
            request.url.query.decode() if isinstance(request.url.query, bytes) else request.url.query
        )
        if path.startswith("/api/v1/nodes/"):
            name = path.rsplit("/", 1)[1]
            return (
                httpx2.Response(200, json=self.nodes[name])
                if name in self.nodes
                else not_found("nodes", name)
            )
        if path == "/api/v1/nodes":
            wanted = dict(kv.split("=", 1) for kv in query.get("labelSelector", [""])[0].split(",") if kv)
            items = [
                n
                for n in self.nodes.values()
                if all(n["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            ]
            return httpx2.Response(
                200, json={"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items}
            )
        parts = path.split("/")
        if len(parts) == 7 and parts[:4] == ["", "api", "v1", "namespaces"] and parts[5] == "pods":
            ns, name = parts[4], parts[6]
            found = [
                p for p in self.pods if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == name
            ]
            return httpx2.Response(200, json=found[0]) if found else not_found("pods", name)
        if path == "/api/v1/pods" or (path.startswith("/api/v1/namespaces/") and path.endswith("/pods")):
            items = list(self.pods)
            if path != "/api/v1/pods":
                ns = path.split("/")[4]
                items = [p for p in items if p["metadata"]["namespace"] == ns]
            sel = query.get("fieldSelector", [""])[0]
            if sel.startswith("spec.nodeName="):
                items = [p for p in items if p["spec"]["nodeName"] == sel.split("=", 1)[1]]
            return httpx2.Response(
                200, json={"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
            )
        if path == "/api/v1/events":  # fieldSelector involvedObject.kind=Node,involvedObject.name=NAME
            wanted = dict(kv.split("=", 1) for kv in query.get("fieldSelector", [""])[0].split(",") if kv)
            items = [
                e
                for e in self.events
                if all(e.get("involvedObject", {}).get(k.split(".", 1)[1]) == v for k, v in wanted.items())
            ]
            return httpx2.Response(
                200, json={"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": items}
            )
        return httpx2.Response(404, json={"kind": "Status", "code": 404, "message": f"no route {path}"})

    def api(self, auth: str = "in-cluster service account") -> KubeApi:
        from lightkube import Client, KubeConfig

        config = KubeConfig.from_dict(
            {
                "clusters": [{"name": "k", "cluster": {"server": SERVER}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
                "current-context": "k",
            }
        )
        client = Client(config, transport=httpx2.MockTransport(self.handle))
        return KubeApi(client=client, info=ApiInfo(SERVER, auth))
