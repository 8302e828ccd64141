"""cgroup v1/v2 -> container id and pod uid."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8s_gpu_mcp.k8s.cgroup import attribute_pid, parse_cgroup

CID = "4f3a" + "b" * 60
UID = "1b2c3d4e-0000-1111-2222-333344445555"
UID_ = UID.replace("-", "_")


@pytest.mark.parametrize(
    ("text", "cid", "uid", "runtime", "qos"),
    [
        (  # cgroup v2, systemd driver, containerd
            f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope",
            CID, UID, "containerd", "burstable",
        ),
        (  # cgroup v2, CRI-O, guaranteed QoS
            f"0::/kubepods.slice/kubepods-pod{UID_}.slice/crio-{CID}.scope", CID, UID, "cri-o", "guaranteed",
        ),
        (  # cgroup v1, cgroupfs driver
            f"12:memory:/kubepods/besteffort/pod{UID}/{CID}\n11:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{CID}\n",
            CID, UID, None, "besteffort",
        ),
        (  # cgroup v1 with systemd driver and docker
            f"4:devices:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{CID}.scope",
            CID, UID, "docker", "besteffort",
        ),
        (f"13:name=systemd:/docker/{CID}\n", CID, None, "docker", None),  # plain docker
        (f"0::/system.slice/docker-{CID}.scope", CID, None, "docker", None),
        (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice", None, UID, None, "burstable"),
    ],
)  # fmt: skip
def test_parse_cgroup(
    text: str, cid: str | None, uid: str | None, runtime: str | None, qos: str | None
) -> None:
    info = parse_cgroup(text)
    assert info is not None
    assert (info.container_id, info.pod_uid, info.runtime, info.qos_class) == (cid, uid, runtime, qos)


@pytest.mark.parametrize("text", ["0::/user.slice/user-1000.slice/session-3.scope", "0::/", "", "garbage"])
def test_not_a_container(text: str) -> None:
    assert parse_cgroup(text) is None


def test_v2_line_preferred_in_hybrid_hierarchy() -> None:
    text = f"1:name=systemd:/user.slice\n0::/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope\n"
    assert parse_cgroup(text).container_id == CID


def test_attribute_pid(tmp_path: Path) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "cgroup").write_text(
        f"0::/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope\n"
    )
    assert attribute_pid(77, tmp_path).pod_uid == UID
    assert attribute_pid(78, tmp_path) is None
