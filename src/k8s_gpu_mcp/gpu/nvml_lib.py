"""The hardware boundary: the only module in the project that imports ``pynvml``.

It finds ``libnvidia-ml.so.1`` (on the host root when running inside a ``kubectl debug``
pod), initializes NVML once, and hands the module to :class:`~k8s_gpu_mcp.gpu.adapter.NvmlAdapter`.
Mock mode hands the adapter :class:`~k8s_gpu_mcp.gpu.fake_nvml.FakeNvml` instead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

log = logging.getLogger(__name__)

LIBRARY_NAME = "libnvidia-ml.so.1"

# Where a node-debugger pod sees the host's driver library (host root mounted at /host),
# then the GPU operator's driver container root.
DEFAULT_SEARCH_PATHS: tuple[str, ...] = (
    "/host/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/host/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
    "/host/usr/lib64/libnvidia-ml.so.1",
    "/host/usr/lib/libnvidia-ml.so.1",
    "/run/nvidia/driver/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/run/nvidia/driver/usr/lib64/libnvidia-ml.so.1",
    "/host/run/nvidia/driver/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
)

_lock = threading.Lock()
_initialized: ModuleType | None = None


class NvmlUnavailable(RuntimeError):
    """NVML could not be loaded or initialized; ``attempts`` says what was tried."""

    def __init__(self, message: str, attempts: list[str]):
        super().__init__(message)
        self.attempts = attempts


def search_paths_from_env() -> tuple[str, ...]:
    """``K8S_GPU_MCP_NVML_SEARCH_PATHS`` (colon-separated) replaces the default list."""
    raw = os.environ.get("K8S_GPU_MCP_NVML_SEARCH_PATHS")
    if raw is None:
        return DEFAULT_SEARCH_PATHS
    return tuple(p for p in raw.split(":") if p)


def load_real_nvml(search_paths: Sequence[str] | None = None) -> ModuleType:
    """Load and initialize the real NVML once, returning the ``pynvml`` module.

    The library is loaded by its standard name first (what a host or a GPU pod has);
    if that fails, each path in ``search_paths`` is tried in order.
    """
    global _initialized
    with _lock:
        if _initialized is not None:
            return _initialized
        import pynvml

        attempts: list[str] = []
        if pynvml.nvmlLib is None:
            for candidate in (
                LIBRARY_NAME,
                *(search_paths if search_paths is not None else search_paths_from_env()),
            ):
                if candidate != LIBRARY_NAME and not os.path.exists(candidate):
                    attempts.append(f"{candidate}: not present")
                    continue
                try:
                    pynvml.nvmlLib = ctypes.CDLL(candidate)
                    log.info("loaded NVML library", extra={"path": candidate})
                    break
                except OSError as exc:
                    attempts.append(f"{candidate}: {exc}")
            else:
                raise NvmlUnavailable("NVML library not found", attempts)
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            attempts.append(f"nvmlInit: {exc}")
            raise NvmlUnavailable(f"nvmlInit failed: {exc}", attempts) from exc
        module: ModuleType = pynvml
        _initialized = module
        return module


def is_real_binding(nvml: object) -> bool:
    """Whether ``nvml`` is the real ``pynvml`` module (not the fake)."""
    real = sys.modules.get("pynvml")
    return real is not None and nvml is real


def running_process_count(nvml: object, handle: object, fn_name: str) -> int | None:
    """How many processes NVML's own size query for ``fn_name`` (``..._v3``) counts.

    pynvml's process-list calls ask with room for none and return ``[]`` whenever that query answers
    SUCCESS, whatever count it sets; real NVML answers INSUFFICIENT_SIZE when there are processes,
    other libraries may not. So an empty list is proof only when this count is 0. None: not the
    real binding, or it has no such C entry point."""
    if not is_real_binding(nvml):
        return None
    import pynvml

    try:
        fn = pynvml._nvmlGetFunctionPointer(f"{fn_name}_v3")
    except pynvml.NVMLError:
        return None
    count = ctypes.c_uint(0)
    ret = fn(handle, ctypes.byref(count), None)
    if ret in (pynvml.NVML_SUCCESS, pynvml.NVML_ERROR_INSUFFICIENT_SIZE):
        return int(count.value)
    return None


def out_struct(nvml: object, name: str) -> tuple[object, object] | None:
    """A fresh output struct ``name`` of this binding (its version field set by its constructor) and
    the argument to pass for it: ``byref`` for pynvml's ctypes structs, the object itself for the fake.
    None when the binding has no such struct."""
    factory = getattr(nvml, name, None)
    if factory is None:
        return None
    struct = factory()
    return struct, (ctypes.byref(struct) if isinstance(struct, ctypes.Structure) else struct)
