"""XID knowledge base, kernel-log parsing, log sources and the NVML XID watcher.

Submodules are imported on demand; importing the package loads nothing (cold start matters).
"""
