"""Backend selection (``--nvml-mode auto|real|mock``) and the ``source`` stamp on every result."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from k8s_gpu_mcp.config import DEFAULT_PROFILE, Settings
from k8s_gpu_mcp.gpu.adapter import NvmlAdapter
from k8s_gpu_mcp.gpu.fleet import MockNode, build_mock_node, mock_proc_info
from k8s_gpu_mcp.gpu.readings import SystemInfo
from k8s_gpu_mcp.host.procfs import ProcInfo

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The agent cannot serve: the message is for the SRE reading stderr."""


@dataclass
class Backend:
    """The opened hardware: real NVML or the mock fleet, behind one adapter."""

    kind: str  # "nvml" or "mock"
    adapter: NvmlAdapter
    node_name: str
    mock: MockNode | None = None
    system: SystemInfo = field(default_factory=SystemInfo)

    @property
    def nvml(self) -> Any:
        return self.adapter.nvml

    # ---- what only the mock fleet answers ----
    def simulated_pid(self, pid: int) -> bool:
        """The pid is one of the mock fleet's simulated GPU processes: not a process on this machine
        (only pids a test registered with ``real: true`` are). Always False on real NVML."""
        return self.mock is not None and pid not in self.adapter.nvml.fake_real_pids()

    def simulated_proc(self, index: int, pid: int) -> ProcInfo | None:
        """What the profile says about a simulated process of GPU ``index``, in place of /proc;
        None for a pid to look up in /proc (real NVML, or a pid registered as real)."""
        if self.mock is None or not self.simulated_pid(pid):
            return None
        return mock_proc_info(self.adapter.nvml.gpus[index], pid)  # the fake's live GPU state

    def emit_scenario_event(self, gpu: int, xid: int) -> None:
        """Queue a scenario's XID on the fake NVML's event set (mock fleet only)."""
        nvml = self.adapter.nvml
        nvml.fake_emit_event(gpu, nvml.nvmlEventTypeXidCriticalError, xid)


def node_name() -> str:
    return os.environ.get("NODE_NAME") or socket.gethostname()


def _open_mock(settings: Settings) -> Backend:
    from k8s_gpu_mcp.gpu.fake_nvml import FakeNvml

    mock = build_mock_node(settings.profile, settings.scenario, DEFAULT_PROFILE)
    fake = FakeNvml(mock.state)
    fake.nvmlInit()
    adapter = NvmlAdapter(fake)
    return Backend("mock", adapter, node_name(), mock, adapter.system())


def _open_real() -> Backend:
    from k8s_gpu_mcp.gpu.nvml_lib import load_real_nvml

    adapter = NvmlAdapter(load_real_nvml())
    return Backend("nvml", adapter, node_name(), None, adapter.system())


def open_backend(settings: Settings) -> Backend:
    """Pick real NVML or the mock fleet.

    auto: real NVML when it initializes; otherwise the mock fleet, but only outside Kubernetes.
    An explicit ``--profile`` or ``--scenario`` asks for mock data and gets it.
    """
    from k8s_gpu_mcp.gpu.nvml_lib import NvmlUnavailable

    mode = settings.nvml_mode
    if mode == "mock" or (mode == "auto" and (settings.profile or settings.scenario)):
        return _open_mock(settings)
    try:
        return _open_real()
    except NvmlUnavailable as exc:
        detail = "; ".join(exc.attempts) or str(exc)
        if mode == "real":
            raise BackendError(f"--nvml-mode=real but NVML is unavailable: {exc} ({detail})") from exc
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise BackendError(
                "NVML could not be initialized inside a Kubernetes pod, and the agent will not serve "
                f"mock data to an SRE on a real node: {exc} ({detail}). Check that the pod mounts the host "
                "root at /host (kubectl debug --profile=sysadmin) and that the NVIDIA driver is loaded; "
                "pass --nvml-mode=mock only for a demo."
            ) from exc
        log.info("NVML unavailable; serving the mock fleet", extra={"reason": str(exc)})
        return _open_mock(settings)


def source_fields(backend: Backend) -> dict[str, Any]:
    mock = backend.mock
    return {
        "backend": backend.kind,
        "mock": mock is not None,
        "profile": mock.profile_name if mock else None,
        "scenario": mock.scenario_name if mock else None,
        "driver_version": backend.system.driver_version,
        "cuda_version": backend.system.cuda_version,
        "nvml_version": backend.system.nvml_version,
        "node": backend.node_name,
        "collected_at": datetime.now(UTC),
        "unavailable": node_unavailable(backend),
    }


def node_unavailable(backend: Backend) -> dict[str, str]:
    """Node-level reads that failed: versions, and GPU enumeration itself."""
    reasons = dict(backend.system.unavailable)
    if backend.adapter.enumeration_error:
        reasons["gpus"] = backend.adapter.enumeration_error
    return reasons
