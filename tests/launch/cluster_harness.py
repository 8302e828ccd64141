"""`connect cluster`'s real serve loop (stdio, signals, session pool) over a fake API and fake sessions.

argv: STATE_DIR. The nodes gpu-node-1..3 (GPUs) and cpu-node-1 come from tests/k8s/fake_api.py;
each node session is tests/launch/fake_node_session.py, which records its pod's creation and deletion.
"""

import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from k8s_gpu_mcp.launch.cluster import ClusterApp, ClusterOptions, serve  # noqa: E402
from k8s_gpu_mcp.launch.cluster_sessions import SessionPool  # noqa: E402
from k8s_gpu_mcp.logs import configure_logging  # noqa: E402
from tests.k8s.fake_api import FakeCluster, gpu_node, gpu_pod  # noqa: E402

FAKE = Path(__file__).with_name("fake_node_session.py")


def make_app(state: Path, **opts: object) -> ClusterApp:
    cpu = gpu_node("cpu-node-1")
    cpu["metadata"]["labels"] = {"kubernetes.io/hostname": "cpu-node-1"}
    cpu["status"]["capacity"] = cpu["status"]["allocatable"] = {"cpu": "8"}
    nodes = [gpu_node(f"gpu-node-{i}") for i in (1, 2, 3)] + [cpu]
    pod = gpu_pod("trainer-0", "gpu-node-2", 8)
    pod["metadata"]["labels"] = {"job-name": "llm-train", "app": "trainer"}
    fake = FakeCluster(nodes, [pod, gpu_pod("web-0", "gpu-node-1", None)])
    kind = "operator" if opts.get("mode") == "operator" else "ok"
    app_ref: list[ClusterApp] = []
    pool = SessionPool(
        lambda node: [sys.executable, str(FAKE), node, str(state), kind],
        max_sessions=2,
        can_elicit=lambda: app_ref[0].outer_can_elicit,
    )
    app = ClusterApp(ClusterOptions(**opts), api=fake.api("kubeconfig"), pool=pool)  # type: ignore[arg-type]
    app_ref.append(app)
    app.fake = fake  # type: ignore[attr-defined]
    return app


if __name__ == "__main__":
    configure_logging("WARNING")
    anyio.run(serve, make_app(Path(sys.argv[1])))
