"""k8s-gpu-mcp: a just-in-time SRE diagnostic agent for NVIDIA GPU nodes, spoken to over MCP."""

__version__ = "0.1.0"
