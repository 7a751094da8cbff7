"""A tiny MCP server over stdio, spawned by the registry discovery tests."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("units", version="1.2.0", instructions="Converts units of measure")


@server.tool()
def mm_to_inch(mm: float) -> float:
    """Convert millimetres to inches."""
    return mm / 25.4


if __name__ == "__main__":
    server.run()
