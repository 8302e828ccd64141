"""Cluster gateway: one MCP server that fans the node tools out to every agent.

discovery (who the agents are) -> fanout (bounded, timed, retried, breaker-guarded calls over
rpc, a small HTTP/1.1 JSON-RPC client) -> server (the MCP tools and the cluster-wide verdicts).
"""
