"""Kubernetes API access for the cluster-aware tools, through lightkube (imported lazily: cold start).

Configuration, first match wins:
1. ``K8S_GPU_MCP_KUBECONFIG`` (and ``K8S_GPU_MCP_KUBE_CONTEXT``): an explicit kubeconfig;
2. the pod's service account (in-cluster: the DaemonSet, or a ``kubectl debug`` pod); its directory
   can be moved with ``K8S_GPU_MCP_SERVICE_ACCOUNT_DIR``;
3. ``KUBECONFIG`` or ``~/.kube/config`` (and ``K8S_GPU_MCP_KUBE_CONTEXT``), for runs outside a cluster.

Every failure becomes a :class:`K8sError` whose message says what to do: a 403 names the verb, the
resource and the identity RBAC refused; an unreachable API names the URL.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RBAC_HINT = "grant it with deploy/kubernetes (ClusterRole k8s-gpu-mcp-read-only); see docs/kubernetes.md"
_USER = re.compile(r'User "([^"]+)"')


class K8sError(Exception):
    """A Kubernetes API failure, phrased for the person reading the tool result."""


@dataclass(frozen=True)
class ApiInfo:
    """Which API server, and as whom."""

    server: str
    auth: str  # "in-cluster service account" | "kubeconfig"
    context: str | None = None
    namespace: str | None = None


def _service_account_dir() -> Path:
    return Path(os.environ.get("K8S_GPU_MCP_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR)


def load_config(
    kubeconfig: str | None = None, context: str | None = None, *, in_cluster: bool = True
) -> tuple[Any, ApiInfo]:
    """Resolve the lightkube SingleConfig to use, and a description of it. ``kubeconfig`` and
    ``context`` (``connect cluster --kubeconfig/--context``) win over the environment;
    ``in_cluster=False`` skips the service account (a user's machine uses the user's kubeconfig)."""
    from lightkube import ConfigError, KubeConfig

    context = context or os.environ.get("K8S_GPU_MCP_KUBE_CONTEXT") or None
    explicit = kubeconfig or os.environ.get("K8S_GPU_MCP_KUBECONFIG")
    sa_dir = _service_account_dir()
    try:
        if explicit:
            if not Path(explicit).is_file():
                raise K8sError(f"no kubeconfig at {explicit}: pass --kubeconfig PATH or set KUBECONFIG")
            return _from_file(KubeConfig, explicit, context)
        if in_cluster and (sa_dir / "token").is_file() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            single = KubeConfig.from_service_account(service_account=sa_dir).get()
            if single is None:
                raise K8sError(f"the service account in {sa_dir} yields no Kubernetes configuration")
            return single, ApiInfo(
                single.cluster.server, "in-cluster service account", None, single.namespace
            )
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
        if not Path(path).is_file():
            where = (
                f"not running in a pod with a service account ({sa_dir}/token and KUBERNETES_SERVICE_HOST), and "
                if in_cluster
                else ""
            )
            raise K8sError(
                f"no Kubernetes configuration: {where}no kubeconfig at {path} "
                "(set KUBECONFIG, or pass --kubeconfig PATH)"
            )
        return _from_file(KubeConfig, path, context)
    except ConfigError as exc:
        raise K8sError(f"invalid Kubernetes configuration: {exc}") from None


def _from_file(kubeconfig_cls: Any, path: str, context: str | None) -> tuple[Any, ApiInfo]:
    from lightkube import ConfigError

    cfg = kubeconfig_cls.from_file(path)
    try:
        single = cfg.get(context_name=context)
    except ConfigError as exc:
        raise K8sError(f"kubeconfig {path}: {exc}") from None
    return single, ApiInfo(single.cluster.server, "kubeconfig", single.context_name, single.namespace)


def _scope(namespace: str | None, name: str | None) -> str:
    if name:
        return f"{name!r}" + (f" in namespace {namespace!r}" if namespace else "")
    return f"in namespace {namespace!r}" if namespace else "cluster-wide"


def _identity(message: str, info: ApiInfo | None) -> str:
    m = _USER.search(message or "")
    user = m.group(1) if m else None
    if user and user.startswith("system:serviceaccount:"):
        return f"service account {user.removeprefix('system:serviceaccount:').replace(':', '/')}"
    if user:
        return f"user {user}"
    if info and info.auth == "in-cluster service account":
        return "this service account"
    return "these credentials"


def translate(
    exc: BaseException, verb: str, resource: str, *, namespace: str | None = None, name: str | None = None,
    info: ApiInfo | None = None, rbac_hint: str = RBAC_HINT,
) -> K8sError:  # fmt: skip
    """Map a lightkube/httpx exception to a K8sError that names what was refused or unreachable."""
    import httpx2
    from lightkube import ApiError

    server = info.server if info else "the API server"
    if isinstance(exc, ApiError):
        code = exc.status.code
        message = exc.status.message or str(exc)
        if code == 403:
            return K8sError(
                f"RBAC forbids {verb!r} on {resource!r} {_scope(namespace, None if verb == 'list' else name)} "
                f"for {_identity(message, info)}; {rbac_hint}"
            )
        if code == 401:
            return K8sError(
                f"the API server at {server} rejected the credentials ({info.auth if info else 'unknown'}): {message}"
            )
        if code == 404:
            return K8sError(f"{resource} {_scope(namespace, name)} not found")
        return K8sError(f"Kubernetes API error {code} on {verb} {resource}: {message}")
    if isinstance(exc, httpx2.TimeoutException):
        return K8sError(f"the Kubernetes API at {server} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx2.TransportError | OSError):
        return K8sError(f"the Kubernetes API at {server} is unreachable: {exc}")
    return K8sError(f"{verb} {resource} failed: {type(exc).__name__}: {exc}")


class KubeApi:
    """The few reads the tools need, returning plain dicts (the API's JSON shape)."""

    def __init__(
        self,
        client: Any = None,
        info: ApiInfo | None = None,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool = True,
        rbac_hint: str = RBAC_HINT,
    ) -> None:
        self._client = client
        self.rbac_hint = rbac_hint
        self._info = info
        self._config_args = (kubeconfig, context, in_cluster)
        self._lock = threading.Lock()

    @property
    def info(self) -> ApiInfo:
        self._ensure()
        assert self._info is not None
        return self._info

    def _ensure(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx2
                from lightkube import Client

                kubeconfig, context, in_cluster = self._config_args
                config, info = load_config(kubeconfig, context, in_cluster=in_cluster)
                self._client = Client(config, timeout=httpx2.Timeout(10.0, connect=3.0))
                self._info = self._info or info
            elif self._info is None:
                cfg = self._client.config
                self._info = ApiInfo(cfg.cluster.server, "client", cfg.context_name, cfg.namespace)
            return self._client

    def _call(
        self, verb: str, resource: str, fn: Any, *, namespace: str | None = None, name: str | None = None
    ) -> Any:
        client = self._ensure()
        try:
            return fn(client)
        except K8sError:
            raise
        except Exception as exc:
            raise translate(
                exc, verb, resource, namespace=namespace, name=name, info=self._info, rbac_hint=self.rbac_hint
            ) from None

    def get_node(self, name: str) -> dict[str, Any]:
        from lightkube.resources.core_v1 import Node

        return self._call("get", "nodes", lambda c: c.get(Node, name).to_dict(), name=name)

    def list_nodes(self, labels: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Node

        return self._call("list", "nodes", lambda c: [n.to_dict() for n in c.list(Node, labels=labels)])

    def list_pods(self, node: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Pod

        fields = {"spec.nodeName": node} if node else None
        return self._call(
            "list",
            "pods",
            lambda c: [p.to_dict() for p in c.list(Pod, namespace=namespace or "*", fields=fields)],
            namespace=namespace,
        )

    def list_node_events(self, node: str) -> list[dict[str, Any]]:
        """The core/v1 Events about one Node (kubelet and controllers record them in ``default``)."""
        from lightkube.resources.core_v1 import Event

        fields = {"involvedObject.kind": "Node", "involvedObject.name": node}
        return self._call(
            "list", "events", lambda c: [e.to_dict() for e in c.list(Event, namespace="*", fields=fields)]
        )

    def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        from lightkube.resources.core_v1 import Pod

        return self._call(
            "get",
            "pods",
            lambda c: c.get(Pod, name, namespace=namespace).to_dict(),
            namespace=namespace,
            name=name,
        )

    def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A Job (batch/v1) or Deployment/StatefulSet/ReplicaSet/DaemonSet (apps/v1), as a dict."""
        from lightkube.resources import apps_v1, batch_v1

        resource = {
            "job": (batch_v1.Job, "jobs"),
            "deployment": (apps_v1.Deployment, "deployments"),
            "statefulset": (apps_v1.StatefulSet, "statefulsets"),
            "replicaset": (apps_v1.ReplicaSet, "replicasets"),
            "daemonset": (apps_v1.DaemonSet, "daemonsets"),
        }[kind]
        cls, plural = resource
        return self._call(
            "get",
            plural,
            lambda c: c.get(cls, name, namespace=namespace).to_dict(),
            namespace=namespace,
            name=name,
        )


_default: KubeApi | None = None
_default_lock = threading.Lock()


def default_api() -> KubeApi:
    """The process-wide API handle (configured on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = KubeApi()
        return _default


def set_default_api(api: KubeApi | None) -> None:
    """Replace (tests) or reset the process-wide API handle."""
    global _default
    with _default_lock:
        _default = api
