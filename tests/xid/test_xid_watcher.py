"""The NVML XID watcher against FakeNvml (2 GPUs, tiny inline profile)."""

from __future__ import annotations

import time

from k8s_gpu_mcp.gpu.fake_nvml import FakeNvml, nvmlEventTypeXidCriticalError
from k8s_gpu_mcp.xid.analyze import analyze
from k8s_gpu_mcp.xid.watcher import XidWatcher

PROFILE = {
    "schema": 1,
    "name": "tiny-x2",
    "driver_version": "580.105.08",
    "gpus": [
        {"index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0", "pci": {"bus_id": "00000000:18:00.0"}},
        {
            "index": 1,
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": "GPU-1",
            "pci": {"bus_id": "00000000:2A:00.0"},
            "supported_event_types": 0x3,  # no XID events on this one
        },
    ],
}
GPU_MAP = [{"index": g["index"], "uuid": g["uuid"], "bus_id": g["pci"]["bus_id"]} for g in PROFILE["gpus"]]


def _wait_for(cond, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)


def _watcher() -> tuple[FakeNvml, XidWatcher]:
    nv = FakeNvml(PROFILE)
    nv.nvmlInit()
    devices = [(i, nv.nvmlDeviceGetHandleByIndex(i)) for i in range(2)]
    return nv, XidWatcher(nv, devices, bus_ids={0: "00000000:18:00.0", 1: "00000000:2A:00.0"}, wait_ms=20)


def test_watcher_records_xid_events_and_unwatched_devices() -> None:
    nv, w = _watcher()
    w.start()
    try:
        assert w.unwatched == {1: "XID events not supported by this device"}
        time.sleep(0.05)  # a few timeouts go by: nothing recorded
        assert w.events() == []
        nv.fake_emit_event(0, nvmlEventTypeXidCriticalError, 48)
        nv.fake_emit_event(1, nvmlEventTypeXidCriticalError, 79)  # not registered: never delivered
        _wait_for(lambda: w.events())
        (ev,) = w.events()
        assert (ev.xid, ev.gpu_index, ev.source, ev.bus_id) == (48, 0, "nvml", "00000000:18:00.0")
        assert ev.timestamp is not None and ev.timestamp.tzinfo is not None
    finally:
        w.stop()
    assert not w.running
    assert nv.calls["nvmlEventSetFree"] == 1 and nv._event_sets == []
    r = analyze(w.events(), GPU_MAP, since=None)
    assert r.status == "degraded" and "GPU 0" in r.action  # a solo XID 48: reset the GPU (Critical)


def test_gpu_is_lost_becomes_a_lost_gpu_event_once() -> None:
    nv, w = _watcher()
    w.start()
    try:
        nv.gpus[1]["lost"] = True
        nv.profile["nvml_errors"] = {"nvmlEventSetWait_v2": "GpuIsLost"}
        _wait_for(lambda: w.events())
        time.sleep(0.1)
    finally:
        w.stop()
    (ev,) = w.events()
    assert (ev.kind, ev.gpu_index) == ("gpu_lost", 1)
    assert analyze(w.events(), GPU_MAP, since=None).events[0].xid == 79


def test_bounded_history() -> None:
    nv = FakeNvml(PROFILE)
    nv.nvmlInit()
    w = XidWatcher(nv, [(0, nv.nvmlDeviceGetHandleByIndex(0))], maxlen=3, wait_ms=20)
    w.start()
    try:
        for xid in (13, 31, 43, 45, 48):
            nv.fake_emit_event(0, nvmlEventTypeXidCriticalError, xid)
        _wait_for(lambda: len(w.events()) == 3 and w.events()[-1].xid == 48)
    finally:
        w.stop()
    assert [e.xid for e in w.events()] == [43, 45, 48]


def test_on_demand_drain_without_a_thread() -> None:
    nv = FakeNvml(PROFILE)
    nv.nvmlInit()
    w = XidWatcher(nv, [(0, nv.nvmlDeviceGetHandleByIndex(0))])
    w.start(background=False)
    assert not w.running
    nv.fake_emit_event(0, nvmlEventTypeXidCriticalError, 79)
    nv.fake_emit_event(0, nvmlEventTypeXidCriticalError, 999)
    w.drain()
    assert [e.xid for e in w.events()] == [79, 999]
    assert "could not name" in w.events()[1].raw and w.last_error is None
    nv.profile["nvml_errors"] = {"nvmlEventSetWait_v2": "Unknown"}
    w.drain()
    assert w.last_error == "Unknown: nvmlEventSetWait_v2"
    nv.profile["nvml_errors"] = {}
    w.stop()
    assert nv._event_sets == []


def _backend(tmp_path, scenario: dict):
    import json

    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.gpu.backend import open_backend

    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"profile": "h100-sxm5-80gb-x8", **scenario}))
    return open_backend(Settings(nvml_mode="mock", scenario=str(path)))


def test_start_watcher_delivers_the_scenarios_live_events_once_registered(tmp_path) -> None:
    from k8s_gpu_mcp.xid.watcher import start_watcher

    watcher = start_watcher(_backend(tmp_path, {"xid_events": [{"gpu": 3, "xid": 48}]}))
    assert watcher is not None and not watcher.running  # mock: drained on demand
    watcher.drain()
    assert [(e.gpu_index, e.xid, e.bus_id) for e in watcher.events()] == [(3, 48, watcher.bus_ids[3])]
    watcher.stop()


def test_start_watcher_without_an_event_set_is_none_and_logged(tmp_path, caplog) -> None:
    from k8s_gpu_mcp.xid.watcher import start_watcher

    backend = _backend(tmp_path, {"nvml_errors": {"nvmlEventSetCreate": "NotSupported"}})
    assert start_watcher(backend) is None
    assert any(r.getMessage() == "NVML XID watcher not started" for r in caplog.records)
