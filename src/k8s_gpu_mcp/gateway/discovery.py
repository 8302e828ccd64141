"""Who the agents are: a static file, or agent pods found through the Kubernetes API."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CACHE_TTL_S = 15.0
DEFAULT_DAEMONSET = "k8s-gpu-mcp"  # deploy/kubernetes/components/daemonset


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
#
# A hand-written scanner, one pass over the text: a regex with optional whitespace on both sides of
# a greedy key backtracks quadratically on long runs of spaces, and this runs on the event loop.

MAX_SELECTOR_CHARS = 4096
MAX_SELECTOR_TERMS = 64
MAX_SET_VALUES = 256
MAX_NODE_NAMES = (
    5000  # Kubernetes' documented largest cluster (kubernetes.io "Considerations for large clusters")
)
MAX_NODE_NAME_CHARS = 253  # a DNS-1123 subdomain
_ECHO_CHARS = 80

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-_")
_OPERATORS = ("==", "!=", "=")


def _clip(text: str, limit: int = _ECHO_CHARS) -> str:
    """repr() of caller input, cut short: an error must not echo a long selector back."""
    shown = repr(text if len(text) <= limit else text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} chars)"


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
    """Split on the commas outside parentheses (``a in (x,y),b`` is two terms)."""
    terms, depth, begin = [], 0, 0
    for i, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(selector[begin:i])
            begin = i + 1
    terms.append(selector[begin:])
    return [t for t in terms if t.strip()]


class _Scanner:
    """Tokens of one term: words (keys, values, ``in``/``notin``), operators, parentheses, commas."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self._skip_space()
        return self.pos >= len(self.text)

    def word(self) -> str | None:
        self._skip_space()
        begin = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _WORD_CHARS:
            self.pos += 1
        return self.text[begin : self.pos] or None

    def take(self, *symbols: str) -> str | None:
        self._skip_space()
        for symbol in symbols:
            if self.text.startswith(symbol, self.pos):
                self.pos += len(symbol)
                return symbol
        return None


def _parse_term(term: str) -> Requirement | None:
    scan = _Scanner(term)
    if scan.take("!"):
        key = scan.word()
        return Requirement(key, "!exists") if key and scan.at_end() else None
    key = scan.word()
    if not key:
        return None
    if scan.at_end():
        return Requirement(key, "exists")
    if op := scan.take(*_OPERATORS):
        value = scan.word() or ""
        if not scan.at_end() or "/" in value:
            return None
        return Requirement(key, "notin" if op == "!=" else "in", frozenset([value]))
    set_op = scan.word()
    if set_op not in ("in", "notin") or not scan.take("("):
        return None
    values: list[str] = []
    while True:
        item = scan.word()
        if not item or "/" in item or len(values) >= MAX_SET_VALUES:
            return None
        values.append(item)
        if scan.take(")"):
            break
        if not scan.take(","):
            return None
    return Requirement(key, set_op, frozenset(values)) if scan.at_end() else None


def parse_selector(selector: str | None) -> list[Requirement]:
    """Parse a label selector in linear time; raise ValueError naming the bad term (clipped)."""
    selector = selector or ""
    if len(selector) > MAX_SELECTOR_CHARS:
        raise ValueError(
            f"label selector too long: {len(selector)} characters (at most {MAX_SELECTOR_CHARS})"
        )
    terms = _split_terms(selector)
    if len(terms) > MAX_SELECTOR_TERMS:
        raise ValueError(f"label selector has {len(terms)} terms (at most {MAX_SELECTOR_TERMS})")
    requirements = []
    for term in terms:
        requirement = _parse_term(term)
        if requirement is None:
            raise ValueError(f"bad label selector term {_clip(term.strip())} in {_clip(selector)}")
        requirements.append(requirement)
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


def _owned_by(pod: Any, daemonset: Any) -> bool:
    """The pod's controller is this DaemonSet object (name and uid: a deleted and recreated
    DaemonSet of the same name is another owner)."""
    refs = (pod.metadata.ownerReferences if pod.metadata else None) or []
    uid = daemonset.metadata.uid if daemonset.metadata else None
    return bool(uid) and any(
        r.controller and r.kind == "DaemonSet" and r.name == daemonset.metadata.name and r.uid == uid
        for r in refs
    )


def _node_addresses(node: Any) -> set[str]:
    return {a.address for a in ((node.status.addresses if node.status else None) or [])}


@dataclass
class _NodeInfo:
    labels: dict[str, str]
    addresses: set[str]


class KubeDiscovery:
    """Ready agent pods with a pod IP, one per node, node labels attached; only pods whose
    controller is the agent DaemonSet (by uid) and that run on the node they name (their hostIP,
    which the kubelet reports, is one of that node's addresses) are trusted with the token.

    A pod that merely carries the agent labels (anyone who can create pods in the namespace can
    make one) is skipped with a warning. lightkube is imported on first use. Results are cached
    for ``CACHE_TTL_S``.
    """

    def __init__(
        self,
        namespace: str,
        selector: str,
        port: int,
        scheme: str = "http",
        ttl_s: float = CACHE_TTL_S,
        daemonset: str = DEFAULT_DAEMONSET,
    ):
        self.namespace, self.selector, self.port, self.scheme, self.ttl_s = (
            namespace,
            selector,
            port,
            scheme,
            ttl_s,
        )
        self.daemonset = daemonset
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
        from lightkube.resources.apps_v1 import DaemonSet
        from lightkube.resources.core_v1 import Node, Pod

        equality = {
            r.key: next(iter(r.values)) for r in self._requirements if r.op == "in" and len(r.values) == 1
        }
        try:
            owner = await client.get(DaemonSet, self.daemonset, namespace=self.namespace)
            pods = [p async for p in client.list(Pod, namespace=self.namespace, labels=equality or None)]
            nodes = {
                n.metadata.name: _NodeInfo(dict(n.metadata.labels or {}), _node_addresses(n))
                async for n in client.list(Node)
            }
        except ApiError as exc:
            raise DiscoveryError(
                f"listing agent pods in {self.namespace} failed: {exc.status.code} {exc.status.message} "
                f"(the gateway needs get on daemonset {self.daemonset}, list on pods and nodes)"
            ) from exc
        except Exception as exc:
            raise DiscoveryError(f"cannot reach the Kubernetes API: {type(exc).__name__}: {exc}") from exc
        agents: dict[str, tuple[str, Agent]] = {}
        untrusted: list[str] = []
        for pod in pods:
            labels = dict(pod.metadata.labels or {})
            node = pod.spec.nodeName if pod.spec else None
            ip = pod.status.podIP if pod.status else None
            if not (node and ip and _pod_ready(pod) and selector_matches(self._requirements, labels)):
                continue
            info = nodes.get(node)
            host_ip = pod.status.hostIP if pod.status else None
            if not _owned_by(pod, owner) or info is None or host_ip not in info.addresses:
                untrusted.append(str(pod.metadata.name))
                continue
            created = str(pod.metadata.creationTimestamp or "")
            if node in agents and agents[node][0] >= created:
                continue  # two DaemonSet pods on one node (a rollout): the newest serves
            host = f"[{ip}]" if ":" in ip else ip
            agents[node] = (created, Agent(node, f"{self.scheme}://{host}:{self.port}/mcp", info.labels))
        if untrusted:
            log.warning(
                "pods with the agent labels not trusted: not controlled by the agent DaemonSet, or not "
                "running on the node they name",
                extra={"daemonset": self.daemonset, "count": len(untrusted), "pods": untrusted[:20]},
            )
        result = sorted((a for _, a in agents.values()), key=lambda a: a.node)
        self._cached = (time.monotonic(), result)
        log.debug("agents discovered", extra={"count": len(result), "namespace": self.namespace})
        return list(result)

    def describe(self) -> str:
        return f"pods {self.selector!r} of daemonset {self.daemonset} in namespace {self.namespace}"


def select_agents(
    agents: list[Agent], node: str | None, nodes: list[str] | None, node_selector: str | None
) -> tuple[list[Agent], list[str]]:
    """Agents for a target (all of them when none is given) and the named nodes that have no agent.

    Raises ValueError (clipped) past MAX_NODE_NAMES names or on a name no node can have."""
    names = ([node] if node else []) + list(nodes or [])
    if len(names) > MAX_NODE_NAMES:
        raise ValueError(f"{len(names)} node names given (at most {MAX_NODE_NAMES})")
    if bad := next((n for n in names if not n or len(n) > MAX_NODE_NAME_CHARS), None):
        raise ValueError(f"not a node name: {_clip(bad)} (1 to {MAX_NODE_NAME_CHARS} characters)")
    requirements = parse_selector(node_selector)
    by_node = {a.node: a for a in agents}
    if names:
        chosen = [by_node[n] for n in dict.fromkeys(names) if n in by_node]
        missing = [n for n in dict.fromkeys(names) if n not in by_node]
    else:
        chosen, missing = list(agents), []
    return [a for a in chosen if selector_matches(requirements, a.labels)], missing
