"""Who the agents are: a static file, or agent pods found through the Kubernetes API."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CACHE_TTL_S = 15.0


class DiscoveryError(RuntimeError):
    """Agents cannot be listed: the message is for the user (and lands in the tool error)."""


@dataclass(frozen=True)
class Agent:
    node: str
    url: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


class Discovery(Protocol):
    async def agents(self) -> list[Agent]: ...

    def describe(self) -> str: ...


# --- label selectors (the Kubernetes syntax: a=b, a==b, a!=b, a, !a, a in (x,y), a notin (x)) ---

_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_selector(selector: str | None) -> list[Requirement]:
    """Parse a label selector; raise ValueError naming the bad term."""
    requirements = []
    for term in _split_terms(selector or ""):
        if m := _SET_RE.match(term):
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            requirements.append(Requirement(m.group(1), m.group(2), values))
        elif m := _EQ_RE.match(term):
            requirements.append(
                Requirement(m.group(1), "notin" if m.group(2) == "!=" else "in", frozenset([m.group(3)]))
            )
        elif m := _EXISTS_RE.match(term):
            requirements.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise ValueError(f"bad label selector term {term.strip()!r} in {selector!r}")
    return requirements


def selector_matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


# --- static file ---


def parse_agents(data: Any, source: str) -> list[Agent]:
    items = data.get("agents") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise DiscoveryError(f"{source}: expected a list of {{node, url, labels}} (or {{agents: [...]}})")
    agents, seen = [], set()
    for i, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("node"), str)
            or not isinstance(item.get("url"), str)
        ):
            raise DiscoveryError(f"{source}: entry {i} needs string 'node' and 'url': {item!r}")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict):
            raise DiscoveryError(f"{source}: entry {i} 'labels' must be a mapping")
        if item["node"] in seen:
            raise DiscoveryError(f"{source}: node {item['node']!r} is listed twice")
        seen.add(item["node"])
        agents.append(Agent(item["node"], item["url"], {str(k): str(v) for k, v in labels.items()}))
    return agents


class StaticDiscovery:
    """``--agents FILE``: YAML or JSON, re-read when the file changes."""

    def __init__(self, path: str):
        self.path = Path(path)
        self._mtime: float | None = None
        self._agents: list[Agent] = []
        self._load()

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            text = self.path.read_text()
        except OSError as exc:
            raise DiscoveryError(f"cannot read agents file {self.path}: {exc}") from exc
        import yaml

        try:
            data = json.loads(text) if self.path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise DiscoveryError(f"agents file {self.path} does not parse: {exc}") from exc
        self._agents, self._mtime = parse_agents(data, str(self.path)), mtime

    async def agents(self) -> list[Agent]:
        self._load()
        return list(self._agents)

    def describe(self) -> str:
        return f"static file {self.path}"


# --- Kubernetes ---


def _pod_ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


class KubeDiscovery:
    """Ready agent pods (label selector, namespace) with a pod IP, one per node; node labels attached.

    lightkube is imported on first use. Results are cached for ``CACHE_TTL_S``.
    """

    def __init__(
        self, namespace: str, selector: str, port: int, scheme: str = "http", ttl_s: float = CACHE_TTL_S
    ):
        self.namespace, self.selector, self.port, self.scheme, self.ttl_s = (
            namespace,
            selector,
            port,
            scheme,
            ttl_s,
        )
        self._requirements = parse_selector(selector)
        self._client: Any = None
        self._cached: tuple[float, list[Agent]] | None = None

    def _lightkube(self) -> Any:
        if self._client is None:
            try:
                from lightkube import AsyncClient
            except ImportError as exc:  # pragma: no cover - lightkube is a dependency
                raise DiscoveryError(f"lightkube is not installed: {exc}") from exc
            try:
                self._client = AsyncClient()
            except Exception as exc:  # no in-cluster config and no kubeconfig
                raise DiscoveryError(
                    f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}"
                ) from exc
        return self._client

    async def agents(self) -> list[Agent]:
        if self._cached and time.monotonic() - self._cached[0] < self.ttl_s:
            return list(self._cached[1])
        client = self._lightkube()
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Node, Pod

        equality = {
            r.key: next(iter(r.values)) for r in self._requirements if r.op == "in" and len(r.values) == 1
        }
        try:
            pods = [p async for p in client.list(Pod, namespace=self.namespace, labels=equality or None)]
            nodes = {n.metadata.name: dict(n.metadata.labels or {}) async for n in client.list(Node)}
        except ApiError as exc:
            raise DiscoveryError(
                f"listing agent pods in {self.namespace} failed: {exc.status.code} {exc.status.message} "
                "(the gateway needs list on pods and nodes)"
            ) from exc
        except Exception as exc:
            raise DiscoveryError(f"cannot reach the Kubernetes API: {type(exc).__name__}: {exc}") from exc
        agents: dict[str, Agent] = {}
        for pod in pods:
            labels = dict(pod.metadata.labels or {})
            node = pod.spec.nodeName if pod.spec else None
            ip = pod.status.podIP if pod.status else None
            if not (node and ip and _pod_ready(pod) and selector_matches(self._requirements, labels)):
                continue
            host = f"[{ip}]" if ":" in ip else ip
            agents[node] = Agent(node, f"{self.scheme}://{host}:{self.port}/mcp", nodes.get(node, {}))
        result = sorted(agents.values(), key=lambda a: a.node)
        self._cached = (time.monotonic(), result)
        log.debug("agents discovered", extra={"count": len(result), "namespace": self.namespace})
        return list(result)

    def describe(self) -> str:
        return f"pods {self.selector!r} in namespace {self.namespace}"


def select_agents(
    agents: list[Agent], node: str | None, nodes: list[str] | None, node_selector: str | None
) -> tuple[list[Agent], list[str]]:
    """Agents for a target (all of them when none is given) and the named nodes that have no agent."""
    names = ([node] if node else []) + list(nodes or [])
    requirements = parse_selector(node_selector)
    by_node = {a.node: a for a in agents}
    if names:
        chosen = [by_node[n] for n in dict.fromkeys(names) if n in by_node]
        missing = [n for n in dict.fromkeys(names) if n not in by_node]
    else:
        chosen, missing = list(agents), []
    return [a for a in chosen if selector_matches(requirements, a.labels)], missing
