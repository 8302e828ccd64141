"""Streamable HTTP serving: auth, TLS, DNS-rebinding guard, probes, metrics, graceful shutdown.

Shared by the agent (``serve --transport http``) and the gateway (``gateway --transport http``).
"""
