"""Background NVML XID watcher: live XID events (and lost GPUs) with wall-clock timestamps.

It receives the NVML module object (real ``pynvml`` or ``FakeNvml``) from the hardware layer and
never imports ``pynvml`` itself. NVML only delivers events after registration; earlier XIDs are
only in the kernel log.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k8s_gpu_mcp.gpu.backend import Backend

    from .parse import KernelEvent

log = logging.getLogger(__name__)
WAIT_MS = 500
UNKNOWN_XID = 999  # NVML's eventData when the driver could not name the XID


def _handle_key(handle: Any) -> Any:
    try:
        return ctypes.cast(handle, ctypes.c_void_p).value  # real pynvml: a ctypes device pointer
    except (TypeError, ctypes.ArgumentError):
        return handle  # the fake's hashable handle


class XidWatcher:
    """Watches ``nvmlEventTypeXidCriticalError`` on the given devices in a daemon thread."""

    def __init__(
        self,
        nvml: Any,
        devices: Sequence[tuple[int, Any]],
        *,
        bus_ids: dict[int, str | None] | None = None,
        maxlen: int = 1000,
        wait_ms: int = WAIT_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.nvml = nvml
        self.devices = list(devices)
        self.bus_ids = bus_ids or {}
        self.wait_ms = wait_ms
        self.clock = clock
        self.unwatched: dict[int, str] = {}
        self.last_error: str | None = None  # the last nvmlEventSetWait failure, cleared by a success
        self._events: deque[KernelEvent] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._event_set: Any = None
        self._index_by_handle = {_handle_key(h): i for i, h in self.devices}
        self._lost: set[int] = set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, background: bool = True) -> None:
        """Create the event set and register every device (synchronously), then start the loop.

        ``background=False`` registers only: events are then collected by :meth:`drain`, on demand
        (deterministic; what the mock fleet uses).
        """
        if self._event_set is not None:
            return
        nv = self.nvml
        self._event_set = nv.nvmlEventSetCreate()
        for index, handle in self.devices:
            try:
                mask = nv.nvmlEventTypeXidCriticalError & nv.nvmlDeviceGetSupportedEventTypes(handle)
                if not mask:
                    self.unwatched[index] = "XID events not supported by this device"
                    continue
                nv.nvmlDeviceRegisterEvents(handle, mask, self._event_set)
            except nv.NVMLError as exc:
                self.unwatched[index] = f"{type(exc).__name__}: {exc}"
        if background:
            self._thread = threading.Thread(target=self._loop, name="nvml-xid-watcher", daemon=True)
            self._thread.start()

    def drain(self) -> None:
        """Collect every event already queued, without waiting (for ``background=False``)."""
        if self._event_set is None or self.running:
            return
        while self._wait_once(0):
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and free the event set."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._event_set is not None:
            try:
                self.nvml.nvmlEventSetFree(self._event_set)
            except self.nvml.NVMLError as exc:
                log.warning("nvmlEventSetFree failed", extra={"error": str(exc)})
            self._event_set = None

    def events(self) -> list[KernelEvent]:
        """A snapshot of the events seen so far (oldest first)."""
        with self._lock:
            return list(self._events)

    def _record(self, kind: str, index: int | None, xid: int | None, text: str) -> None:
        from .parse import KernelEvent

        bus_id = self.bus_ids.get(index) if index is not None else None
        event = KernelEvent(
            kind=kind,  # type: ignore[arg-type]
            xid=xid,
            pci=None,
            bus_id=bus_id,
            pid=None,
            process=None,
            message=text,
            raw=text,
            timestamp=datetime.fromtimestamp(self.clock(), UTC),
            uptime_s=None,
            timestamp_kind="nvml",
            timestamp_note=None,
            source="nvml",
            gpu_index=index,
        )
        with self._lock:
            self._events.append(event)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._wait_once(self.wait_ms) and self.last_error is not None:
                self._stop.wait(self.wait_ms / 1000)  # an error: do not spin

    def _wait_once(self, timeout_ms: int) -> bool:
        """One nvmlEventSetWait; True when an event was recorded."""
        nv = self.nvml
        try:
            data = nv.nvmlEventSetWait(self._event_set, timeout_ms)
        except nv.NVMLError as exc:
            if isinstance(exc, nv.NVMLError_Timeout):
                self.last_error = None
                return False
            self.last_error = f"{type(exc).__name__.removeprefix('NVMLError_')}: nvmlEventSetWait_v2"
            if isinstance(exc, nv.NVMLError_GpuIsLost):
                self._find_lost()
            else:
                log.warning("nvmlEventSetWait failed", extra={"error": self.last_error})
            return False
        self.last_error = None
        index = self._index_by_handle.get(_handle_key(data.device))
        xid = int(data.eventData)
        text = f"NVML XID event: {xid} on GPU {index}"
        if xid == UNKNOWN_XID:
            text += " (NVML could not name the XID)"
        if data.gpuInstanceId != 0xFFFFFFFF:
            text += f", GPU instance {data.gpuInstanceId}, compute instance {data.computeInstanceId}"
        self._record("xid", index, xid, text)
        return True

    def _find_lost(self) -> None:
        """NVML said a GPU is lost: find which (each reported once) and record a lost-GPU event."""
        nv = self.nvml
        for index, handle in self.devices:
            if index in self._lost:
                continue
            try:
                nv.nvmlDeviceGetUUID(handle)
            except nv.NVMLError_GpuIsLost:
                self._lost.add(index)
                self._record("gpu_lost", index, None, f"NVML: GPU {index} is lost (GpuIsLost)")
            except nv.NVMLError:
                continue


def start_watcher(backend: Backend) -> XidWatcher | None:
    """Start a watcher on every GPU the backend can watch; on the mock fleet, deliver the scenario's
    ``xid_events`` once it has registered. None (with a warning) when NVML cannot watch."""
    refs = [r for r in backend.adapter.gpus() if r.handle is not None and not r.lost_reason]
    try:
        watcher = XidWatcher(
            backend.nvml, [(r.index, r.handle) for r in refs], bus_ids={r.index: r.bus_id for r in refs}
        )
        watcher.start(background=backend.mock is None)  # mock: drained on demand, deterministic
    except Exception as exc:  # noqa: BLE001 - no watcher is a degraded mode, not a failure
        log.warning("NVML XID watcher not started", extra={"error": str(exc)})
        return None
    if backend.mock is not None:
        for ev in backend.mock.xid_events:
            backend.emit_scenario_event(int(ev["gpu"]), int(ev["xid"]))
    return watcher
