from __future__ import annotations

import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gpu import nvml_lib
from k8s_gpu_mcp.gpu.backend import BackendError, open_backend, source_fields

try:
    nvml_lib.load_real_nvml()
    HAVE_NVML = True
except nvml_lib.NvmlUnavailable:
    HAVE_NVML = False

no_gpu = pytest.mark.skipif(HAVE_NVML, reason="a real NVML is present on this machine")


@no_gpu
def test_auto_falls_back_to_mock_outside_kubernetes(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    backend = open_backend(Settings(nvml_mode="auto"))
    assert backend.kind == "mock" and backend.mock and backend.mock.profile_name == "h100-sxm5-80gb-x8"


@no_gpu
def test_auto_refuses_mock_inside_a_pod(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    with pytest.raises(BackendError, match="will not serve mock data"):
        open_backend(Settings(nvml_mode="auto"))


@no_gpu
def test_real_mode_without_nvml_fails_with_what_was_tried(monkeypatch):
    monkeypatch.setenv("K8S_GPU_MCP_NVML_SEARCH_PATHS", "/nonexistent/libnvidia-ml.so.1")
    with pytest.raises(BackendError, match="/nonexistent/libnvidia-ml.so.1: not present"):
        open_backend(Settings(nvml_mode="real"))


def test_explicit_profile_in_auto_mode_serves_labelled_mock(monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("NODE_NAME", "node-5")
    backend = open_backend(Settings(nvml_mode="auto", profile="t4"))
    fields = source_fields(backend)
    assert fields["backend"] == "mock" and fields["mock"] is True and fields["profile"] == "t4"
    assert fields["node"] == "node-5" and fields["driver_version"]


def test_default_search_list_covers_host_root_and_gpu_operator():
    paths = nvml_lib.DEFAULT_SEARCH_PATHS
    assert "/host/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1" in paths
    assert any(p.startswith("/host/usr/lib64") for p in paths)
    assert any(p.startswith("/run/nvidia/driver") for p in paths)


def test_search_list_is_configurable(monkeypatch):
    monkeypatch.setenv("K8S_GPU_MCP_NVML_SEARCH_PATHS", "/a/libnvidia-ml.so.1:/b/libnvidia-ml.so.1")
    assert nvml_lib.search_paths_from_env() == ("/a/libnvidia-ml.so.1", "/b/libnvidia-ml.so.1")
