from __future__ import annotations

from datetime import UTC, datetime

from k8s_gpu_mcp.host.procfs import (
    boot_time,
    clock_ticks,
    parse_stat,
    proc_root_problem,
    read_passwd,
    read_proc,
)
from tests.host.proctree import BTIME, CGROUP_V2_POD, CONTAINER, POD_UID, FakeProc, make_host, make_proc


def test_parse_stat_with_parens_and_spaces_in_comm():
    comm, state, ppid, start = parse_stat("77 (my (weird) proc) Z 5 " + " ".join(["0"] * 17) + " 1234 0 0\n")
    assert (comm, state, ppid, start) == ("my (weird) proc", "Z", 5, 1234)


def test_read_proc_from_a_fake_tree(tmp_path):
    proc = make_proc(
        tmp_path, FakeProc(4242, uid=1000, start_ticks=100 * clock_ticks(), cgroup=CGROUP_V2_POD)
    )
    host = make_host(tmp_path, {0: "root", 1000: "alice"})
    info = read_proc(proc, 4242, read_passwd(host), boot_time(proc))
    assert info.exists and info.cmdline == "python train.py" and info.user == "alice" and info.uid == 1000
    assert info.state_name == "sleeping" and not info.defunct
    assert info.start_time == datetime.fromtimestamp(BTIME + 100, UTC)
    assert info.cgroup.pod_uid == POD_UID and info.cgroup.container_id == CONTAINER


def test_missing_and_defunct_processes(tmp_path):
    proc = make_proc(tmp_path, FakeProc(7, state="Z", cmdline=[]))
    assert not read_proc(proc, 8).exists
    info = read_proc(proc, 7)
    assert info.defunct and info.cmdline == "[python]" and info.user == "1000"  # no passwd: the uid
    assert "start_time" in info.unavailable  # no btime given


def test_proc_root_problem(tmp_path):
    assert proc_root_problem(make_proc(tmp_path / "host")) is None
    assert "host PID" in proc_root_problem(make_proc(tmp_path / "ctr", host_pid_ns=False))
    assert proc_root_problem(tmp_path / "nothing")
    assert boot_time(tmp_path / "nothing") is None and read_passwd(tmp_path / "nothing") == {}
