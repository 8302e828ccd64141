"""Cordon, uncordon and drain a GPU node through the API server: the plan is pure, the calls are few.

A drain evicts through the Eviction API (``pods/eviction`` create), so PodDisruptionBudgets are honoured:
an eviction a budget forbids comes back as ``blocked`` with the API server's reason, and nothing is
deleted by force. It evicts the pods that use GPUs (``nvidia.com/gpu`` or ``nvidia.com/mig-*``), or
every evictable pod on request; it never evicts DaemonSet pods (the controller would recreate them on
the same node), static pods (the kubelet owns them) or pods that already finished or are terminating.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from k8s_gpu_mcp.k8s.client import KubeApi

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
Action = Literal["evict", "skip"]
Outcome = Literal["evicted", "blocked", "gone", "failed"]


def is_gpu_resource(name: str) -> bool:
    return name == "nvidia.com/gpu" or name.startswith("nvidia.com/mig-")


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0  # extended resources are whole numbers; anything else is not a GPU count


def gpu_request(pod: Mapping[str, Any]) -> int:
    """GPUs (whole or MIG instances) a pod asks for: per container the larger of request and limit."""
    spec = pod.get("spec") or {}
    total = 0
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = container.get("resources") or {}
        wanted: dict[str, int] = {}
        for part in ("requests", "limits"):
            for name, value in (resources.get(part) or {}).items():
                if is_gpu_resource(name):
                    wanted[name] = max(wanted.get(name, 0), _quantity(value))
        total += sum(wanted.values())
    return total


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    gpus: int
    action: Action
    why: str


def plan_pod(pod: Mapping[str, Any], *, all_pods: bool) -> PodPlan:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    gpus = gpu_request(pod)

    def plan(action: Action, why: str) -> PodPlan:
        return PodPlan(meta.get("namespace") or "default", meta.get("name") or "?", gpus, action, why)

    if status.get("phase") in ("Succeeded", "Failed"):
        return plan("skip", f"already {status['phase'].lower()}")
    if meta.get("deletionTimestamp"):
        return plan("skip", "already terminating")
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return plan("skip", "static pod: the kubelet owns it, eviction cannot remove it")
    if any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or []):
        return plan("skip", "DaemonSet pod: its controller would recreate it on this node")
    if gpus == 0 and not all_pods:
        return plan("skip", "uses no GPU (all_pods=true evicts it too)")
    return plan("evict", f"uses {gpus} GPU{'s' if gpus != 1 else ''}" if gpus else "all_pods=true")


def plan_drain(pods: Iterable[Mapping[str, Any]], *, all_pods: bool) -> list[PodPlan]:
    """Every pod on the node with what a drain does to it, the ones to evict first."""
    plans = [plan_pod(p, all_pods=all_pods) for p in pods]
    return sorted(plans, key=lambda p: (p.action != "evict", p.namespace, p.name))


def set_unschedulable(api: KubeApi, node: str, unschedulable: bool) -> bool:
    """Cordon (True) or uncordon (False) a node; returns what ``spec.unschedulable`` was before."""
    from lightkube.resources.core_v1 import Node

    before = api.get_node(node).get("spec", {}).get("unschedulable") is True
    if before != unschedulable:
        patch = {"spec": {"unschedulable": unschedulable}}
        api._call("patch", "nodes", lambda c: c.patch(Node, node, patch), name=node)
    return before


def evict(api: KubeApi, namespace: str, name: str, grace_seconds: int | None) -> tuple[Outcome, str]:
    """One eviction: ``evicted``, ``blocked`` (a PodDisruptionBudget forbids it now), ``gone`` (the pod
    no longer exists) or ``failed``, with the API server's words. API servers before 1.22 know only
    policy/v1beta1 Evictions; the same request is then repeated in that version."""
    outcome, message = _post_eviction(api, namespace, name, grace_seconds, "policy/v1")
    if outcome == "failed" and _unknown_version(message):
        return _post_eviction(api, namespace, name, grace_seconds, "policy/v1beta1")
    return outcome, message


def _unknown_version(message: str) -> bool:
    text = message.lower()
    return "policy/v1" in text and ("no kind" in text or "not registered" in text or "could not find" in text)


def _post_eviction(
    api: KubeApi, namespace: str, name: str, grace_seconds: int | None, api_version: str
) -> tuple[Outcome, str]:
    from lightkube import ApiError
    from lightkube.models.meta_v1 import DeleteOptions, ObjectMeta
    from lightkube.resources.core_v1 import Pod

    from k8s_gpu_mcp.k8s.client import K8sError, translate

    body = Pod.Eviction(
        metadata=ObjectMeta(name=name, namespace=namespace),
        deleteOptions=DeleteOptions(gracePeriodSeconds=grace_seconds) if grace_seconds is not None else None,
    )
    body.apiVersion = api_version  # the model pins policy/v1 when it is built
    try:
        api._ensure().create(body, name=name, namespace=namespace)
    except ApiError as exc:
        code, message = exc.status.code, exc.status.message or str(exc)
        if code == 429:
            return "blocked", message
        if code == 404 and not _unknown_version(f"{api_version} {message}"):
            return "gone", message
        return "failed", f"{api_version}: {message}" if code in (400, 404) else str(
            translate(exc, "create", "pods/eviction", namespace=namespace, name=name, info=api._info)
        )
    except K8sError as exc:
        return "failed", str(exc)
    except Exception as exc:
        return "failed", str(
            translate(exc, "create", "pods/eviction", namespace=namespace, name=name, info=api._info)
        )
    return "evicted", f"eviction accepted ({api_version})"
