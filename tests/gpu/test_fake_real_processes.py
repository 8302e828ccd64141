from __future__ import annotations

import subprocess

from k8s_gpu_mcp.gpu.fake_nvml import FakeHandle, FakeNvml
from k8s_gpu_mcp.gpu.fleet import load_profile


def test_real_processes_leave_the_fake_when_they_exit():
    fake = FakeNvml(load_profile("h100-sxm5-80gb-x8")[1])
    fake.nvmlInit()
    child = subprocess.Popen(["sleep", "300"], stdout=subprocess.DEVNULL)
    try:
        fake.fake_add_process(0, child.pid, 2**30, real=True)
        fake.fake_add_process(0, 4242, 2**30)  # simulated: stays
        h = FakeHandle(0)
        assert {p.pid for p in fake.nvmlDeviceGetComputeRunningProcesses(h)} == {child.pid, 4242}
        assert fake.fake_real_pids() == {child.pid}
        child.terminate()
        child.wait(timeout=10)
        assert [p.pid for p in fake.nvmlDeviceGetComputeRunningProcesses(h)] == [4242]
        assert fake.nvmlDeviceGetMemoryInfo(h, version=2).used == 2**30
    finally:
        child.kill()
        child.wait()


def test_an_unreaped_real_child_counts_as_exited():
    fake = FakeNvml(load_profile("t4")[1])
    fake.nvmlInit()
    child = subprocess.Popen(["true"], stdout=subprocess.DEVNULL)
    fake.fake_add_process(0, child.pid, 2**20, real=True)
    import time

    for _ in range(100):  # until it is a zombie (exited, not yet reaped)
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
        time.sleep(0.02)
    assert fake.nvmlDeviceGetComputeRunningProcesses(FakeHandle(0)) == []
    child.wait()
