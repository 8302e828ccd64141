"""Pod name and namespace for pod UIDs found in cgroups: one best-effort list of the node's pods.

Uses the k8s client module when it is present (``k8s_gpu_mcp.k8s.client``), else lightkube
directly; lightkube is imported lazily. Every failure becomes a reason string, never an exception:
attribution is enrichment, and a process list must not fail because the API server is down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodRef:
    """A pod named by the API server: uid, name, namespace, phase."""

    uid: str
    name: str
    namespace: str
    phase: str | None = None


@dataclass
class PodLookup:
    """``pods`` by UID when the node's pods could be listed; else None and ``reason``."""

    pods: dict[str, PodRef] | None
    reason: str | None = None


def _list_with_client_module(node: str) -> list[dict[str, Any]]:
    from k8s_gpu_mcp.k8s.client import default_api

    return default_api().list_pods(node=node)


def _list_with_lightkube(node: str) -> list[dict[str, Any]]:
    import httpx2
    from lightkube import Client
    from lightkube.resources.core_v1 import Pod

    client = Client(timeout=httpx2.Timeout(10.0, connect=3.0))
    return [p.to_dict() for p in client.list(Pod, namespace="*", fields={"spec.nodeName": node})]


def list_node_pods(node: str) -> list[dict[str, Any]]:
    """The pods scheduled on ``node`` as API dicts. Stub this in tests."""
    try:
        return _list_with_client_module(node)
    except ImportError:
        return _list_with_lightkube(node)


def lookup_pods(node: str, *, mock: bool) -> PodLookup:
    if mock:
        return PodLookup(None, "mock backend: pod UIDs are simulated, so the Kubernetes API is not asked")
    try:
        items = list_node_pods(node)
    except Exception as exc:  # no config, RBAC, unreachable: all mean "unknown", with the reason
        log.info("pod lookup failed", extra={"node": node, "error": str(exc)})
        return PodLookup(None, f"Kubernetes API not available: {type(exc).__name__}: {exc}")
    pods: dict[str, PodRef] = {}
    for item in items:
        meta = item.get("metadata") or {}
        if meta.get("uid"):
            phase = (item.get("status") or {}).get("phase")
            pods[meta["uid"]] = PodRef(meta["uid"], meta.get("name", ""), meta.get("namespace", ""), phase)
    return PodLookup(pods)
