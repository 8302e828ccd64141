"""The hardware layer: the one NVML boundary, its pynvml-compatible fake, and the mock fleet."""
