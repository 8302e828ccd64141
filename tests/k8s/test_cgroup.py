from __future__ import annotations

import pytest

from k8s_gpu_mcp.k8s.cgroup import CgroupInfo, parse_cgroup, read_cgroup

UID = "0f9c1e2a-3b4c-4d5e-8f60-718293a4b5c6"
UNDERSCORED = UID.replace("-", "_")
CID = "3f" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # cgroup v2, systemd driver, containerd
            f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UNDERSCORED}.slice/"
            f"cri-containerd-{CID}.scope\n",
            (CID, UID, "containerd", "burstable"),
        ),
        (  # cgroup v2, cgroupfs driver, guaranteed QoS (no qos level in the path)
            f"0::/kubepods/pod{UID}/{CID}\n",
            (CID, UID, None, "guaranteed"),
        ),
        (  # CRI-O, besteffort, systemd driver
            f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UNDERSCORED}.slice/crio-{CID}.scope",
            (CID, UID, "cri-o", "besteffort"),
        ),
        (  # cgroup v1: many controllers; the pod line wins over the empty v2 entry
            f"12:memory:/kubepods/burstable/pod{UID}/{CID}\n11:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n0::/\n",
            (CID, UID, None, "burstable"),
        ),
        (  # plain docker (no Kubernetes)
            f"0::/docker/{CID}\n",
            (CID, None, "docker", None),
        ),
        (  # docker under the kubelet's cgroupfs driver (dockershim era)
            f"4:devices:/kubepods/besteffort/pod{UID}/{CID}\n",
            (CID, UID, None, "besteffort"),
        ),
        (  # a host service: no container
            "0::/system.slice/nvidia-persistenced.service\n",
            (None, None, None, None),
        ),
        ("0::/\n", (None, None, None, None)),  # behind a cgroup namespace
        ("", (None, None, None, None)),
        ("garbage without colons\n", (None, None, None, None)),
    ],
)
def test_parse_cgroup_formats(text, expected):
    info = parse_cgroup(text)
    assert (info.container_id, info.pod_uid, info.runtime, info.qos) == expected


def test_crio_conmon_is_not_a_container():
    info = parse_cgroup(f"0::/kubepods.slice/kubepods-pod{UNDERSCORED}.slice/crio-conmon-{CID}.scope\n")
    assert info.container_id is None and info.pod_uid == UID and info.qos == "guaranteed"


def test_read_cgroup(tmp_path):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text(f"0::/kubepods/pod{UID}/{CID}\n")
    assert read_cgroup(tmp_path, 42) == CgroupInfo(CID, UID, None, "guaranteed", f"/kubepods/pod{UID}/{CID}")
    assert read_cgroup(tmp_path, 43) is None


# Cases gathered for the XID analyzer's pid attribution (same parser, one implementation).
_CID = "4f3a" + "b" * 60
_UID = "1b2c3d4e-0000-1111-2222-333344445555"
_UID_ = _UID.replace("-", "_")


@pytest.mark.parametrize(
    ("text", "cid", "uid", "runtime", "qos"),
    [
        (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{_UID_}.slice/cri-containerd-{_CID}.scope", _CID, _UID, "containerd", "burstable"),
        (f"0::/kubepods.slice/kubepods-pod{_UID_}.slice/crio-{_CID}.scope", _CID, _UID, "cri-o", "guaranteed"),
        (f"12:memory:/kubepods/besteffort/pod{_UID}/{_CID}\n11:cpu,cpuacct:/kubepods/besteffort/pod{_UID}/{_CID}\n", _CID, _UID, None, "besteffort"),
        (f"4:devices:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{_UID_}.slice/docker-{_CID}.scope", _CID, _UID, "docker", "besteffort"),
        (f"13:name=systemd:/docker/{_CID}\n", _CID, None, "docker", None),
        (f"0::/system.slice/docker-{_CID}.scope", _CID, None, "docker", None),
        (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{_UID_}.slice", None, _UID, None, "burstable"),
    ],
)  # fmt: skip
def test_xid_attribution_cases(text, cid, uid, runtime, qos):
    info = parse_cgroup(text)
    assert (info.container_id, info.pod_uid, info.runtime, info.qos) == (cid, uid, runtime, qos)


@pytest.mark.parametrize("text", ["0::/user.slice/user-1000.slice/session-3.scope", "0::/", "", "garbage"])
def test_not_a_container_has_no_ids(text):
    info = parse_cgroup(text)
    assert info.container_id is None and info.pod_uid is None
