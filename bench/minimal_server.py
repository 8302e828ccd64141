"""The floor we compare against: a minimal MCPServer with one trivial tool, over stdio."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("minimal")


@server.tool()
def ping(value: int = 0) -> int:
    """Return the value."""
    return value


if __name__ == "__main__":
    server.run("stdio")
