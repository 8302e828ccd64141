from __future__ import annotations

import json
from types import SimpleNamespace as NS

import pytest

from k8s_gpu_mcp.gateway.discovery import (
    Agent,
    DiscoveryError,
    KubeDiscovery,
    StaticDiscovery,
    parse_selector,
    select_agents,
    selector_matches,
)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("zone in (a, b),gpu", {"zone": "b", "gpu": "1"}, True),
        ("zone notin (a,b)", {"zone": "b"}, False),
        (
            "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
            {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            True,
        ),
        ("", {}, True),
    ],
)
def test_selectors(selector, labels, expected):
    assert selector_matches(parse_selector(selector), labels) is expected


def test_bad_selector_names_the_term():
    with pytest.raises(ValueError, match=r"bad label selector term 'a=\(b'"):
        parse_selector("a=(b")


def test_static_yaml_and_json_and_reload(tmp_path):
    path = tmp_path / "agents.yaml"
    path.write_text("- {node: n1, url: 'http://10.0.0.1:8080/mcp', labels: {zone: a}}\n")
    disc = StaticDiscovery(str(path))
    import anyio

    assert anyio.run(disc.agents) == [Agent("n1", "http://10.0.0.1:8080/mcp")]
    as_json = tmp_path / "agents.json"
    as_json.write_text(json.dumps({"agents": [{"node": "n2", "url": "http://x/mcp"}]}))
    assert [a.node for a in anyio.run(StaticDiscovery(str(as_json)).agents)] == ["n2"]
    path.write_text("- {node: n1, url: 'http://a/mcp'}\n- {node: n3, url: 'http://b/mcp'}\n")
    import os

    os.utime(path, ns=(7, 7))
    assert [a.node for a in anyio.run(disc.agents)] == ["n1", "n3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "expected a list"),
        ("- {node: n1}", "needs string 'node' and 'url'"),
        ("- {node: n1, url: u}\n- {node: n1, url: v}", "listed twice"),
        ("- [", "does not parse"),
    ],
)
def test_static_errors(tmp_path, text, message):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(DiscoveryError, match=message):
        StaticDiscovery(str(path))


def test_select_agents_by_name_list_and_selector():
    agents = [Agent("a", "u", {"zone": "1"}), Agent("b", "u", {"zone": "2"}), Agent("c", "u", {"zone": "1"})]
    assert select_agents(agents, None, None, None) == (agents, [])
    chosen, missing = select_agents(agents, "a", ["c", "zz"], None)
    assert [x.node for x in chosen] == ["a", "c"] and missing == ["zz"]
    assert [x.node for x in select_agents(agents, None, None, "zone=1")[0]] == ["a", "c"]
    assert [x.node for x in select_agents(agents, None, ["a", "b"], "zone=2")[0]] == ["b"]


DS = NS(metadata=NS(name="k8s-gpu-mcp", uid="ds-uid-1"))
OWNED = [NS(controller=True, kind="DaemonSet", name="k8s-gpu-mcp", uid="ds-uid-1")]


def _pod(
    name: str,
    node: str | None,
    ip: str | None,
    ready: bool,
    labels: dict[str, str],
    owners: list[NS] | None = None,
    host_ip: str | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> NS:
    return NS(
        metadata=NS(
            name=name,
            labels=labels,
            ownerReferences=OWNED if owners is None else owners,
            creationTimestamp=created,
        ),
        spec=NS(nodeName=node),
        status=NS(
            podIP=ip,
            hostIP=host_ip or f"192.168.0.{(node or 'x-0').rsplit('-', 1)[-1]}",
            conditions=[NS(type="Ready", status="True" if ready else "False")],
        ),
    )


def _node(name: str, labels: dict[str, str] | None = None) -> NS:
    address = NS(address=f"192.168.0.{name.rsplit('-', 1)[-1]}")
    return NS(metadata=NS(name=name, labels=labels or {}), status=NS(addresses=[address]))


class FakeLightkube:
    def __init__(self, pods: list[NS], nodes: list[NS], daemonset: NS = DS):
        self.pods, self.nodes, self.daemonset, self.calls = pods, nodes, daemonset, []

    async def get(self, res, name, namespace=None):
        self.calls.append((res.__name__, name, namespace))
        return self.daemonset

    def list(self, res, namespace=None, labels=None):
        self.calls.append((res.__name__, namespace, labels))
        items = self.pods if res.__name__ == "Pod" else self.nodes

        async def gen():
            for item in items:
                yield item

        return gen()


@pytest.mark.anyio
async def test_kube_discovery_keeps_ready_pods_with_an_ip_and_attaches_node_labels():
    selector = "app.kubernetes.io/name=k8s-gpu-mcp-agent"
    label = {"app.kubernetes.io/name": "k8s-gpu-mcp-agent"}
    fake = FakeLightkube(
        [
            _pod("p1", "gpu-1", "10.0.0.1", True, label),
            _pod("p2", "gpu-2", "10.0.0.2", False, label),  # not ready
            _pod("p3", "gpu-3", None, True, label),  # no IP yet
            _pod("p4", "gpu-4", "fd00::4", True, label),
            _pod("p5", "gpu-5", "10.0.0.5", True, {"app.kubernetes.io/name": "other"}),
        ],
        [_node("gpu-1", {"zone": "a"})] + [_node(f"gpu-{i}") for i in range(2, 6)],
    )
    disc = KubeDiscovery("k8s-gpu-mcp", selector, 8080)
    disc._client = fake
    agents = await disc.agents()
    assert [(a.node, a.url, a.labels) for a in agents] == [
        ("gpu-1", "http://10.0.0.1:8080/mcp", {"zone": "a"}),
        ("gpu-4", "http://[fd00::4]:8080/mcp", {}),
    ]
    assert fake.calls[0] == ("DaemonSet", "k8s-gpu-mcp", "k8s-gpu-mcp")
    assert fake.calls[1] == ("Pod", "k8s-gpu-mcp", label)
    await disc.agents()  # cached
    assert len(fake.calls) == 3


@pytest.mark.anyio
async def test_kube_discovery_trusts_only_daemonset_pods_on_the_node_they_name(caplog):
    """Issue 20 item 6: a shadow pod with the agent labels never receives the token."""
    label = {"app.kubernetes.io/name": "k8s-gpu-mcp-agent"}
    impostor = [NS(controller=True, kind="DaemonSet", name="k8s-gpu-mcp", uid="someone-elses")]
    fake = FakeLightkube(
        [
            _pod("real-1", "gpu-1", "10.0.0.1", True, label, created="2026-01-01T00:00:00Z"),
            _pod("shadow-1", "gpu-1", "10.0.0.99", True, label, owners=[], created="2026-02-01T00:00:00Z"),
            _pod("wrong-uid", "gpu-2", "10.0.0.2", True, label, owners=impostor),
            _pod(
                "not-controller",
                "gpu-3",
                "10.0.0.3",
                True,
                label,
                owners=[NS(**{**vars(OWNED[0]), "controller": False})],
            ),
            _pod("elsewhere", "gpu-4", "10.0.0.4", True, label, host_ip="192.168.0.77"),
            _pod("no-such-node", "gpu-9", "10.0.0.9", True, label),
            _pod("rollout-old", "gpu-5", "10.0.0.50", True, label, created="2026-01-01T00:00:00Z"),
            _pod("rollout-new", "gpu-5", "10.0.0.51", True, label, created="2026-03-01T00:00:00Z"),
        ],
        [_node(f"gpu-{i}") for i in range(1, 6)],
    )
    disc = KubeDiscovery("k8s-gpu-mcp", "app.kubernetes.io/name=k8s-gpu-mcp-agent", 8080)
    disc._client = fake
    agents = await disc.agents()
    assert [(a.node, a.url) for a in agents] == [
        ("gpu-1", "http://10.0.0.1:8080/mcp"),
        ("gpu-5", "http://10.0.0.51:8080/mcp"),
    ]
    warned = [r for r in caplog.records if "not trusted" in r.getMessage()]
    assert warned and warned[0].count == 5


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("  a  ,  !b  ", {"a": "1"}, True),
        ("a in (x),b notin (y, z)", {"a": "x", "b": "z"}, False),
        ("a=", {"a": ""}, True),
        ("my_key=v_1", {"my_key": "v_1"}, True),
    ],
)
def test_more_selectors(selector, labels, expected):
    assert selector_matches(parse_selector(selector), labels) is expected


@pytest.mark.parametrize(
    "selector", ["a in ()", "a in (x", "a in (x,)", "a notin x", "a = b c", "!a=b", "a=b/c", "a b", "=b", "!"]
)
def test_malformed_selectors_are_refused(selector):
    with pytest.raises(ValueError, match="bad label selector term"):
        parse_selector(selector)


def test_selector_limits_and_clipped_errors():
    with pytest.raises(ValueError, match="too long: 100000 characters"):
        parse_selector(" " * 100_000)
    with pytest.raises(ValueError, match="65 terms"):
        parse_selector(",".join(f"k{i}" for i in range(65)))
    with pytest.raises(ValueError) as err:
        parse_selector("a=" + "(" * 4000)
    assert len(str(err.value)) < 300 and "(4002 chars)" in str(err.value)


def test_node_name_lists_are_bounded():
    agents = [Agent("a", "u")]
    with pytest.raises(ValueError, match="5001 node names given"):
        select_agents(agents, None, [f"n{i}" for i in range(5001)], None)
    with pytest.raises(ValueError) as err:
        select_agents(agents, "x" * 1_000_000, None, None)
    assert len(str(err.value)) < 300
