"""Kubernetes helpers: lightkube client helpers and cgroup -> pod attribution."""
