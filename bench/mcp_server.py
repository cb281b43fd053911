"""The benchmark's MCP server (FastMCP): one tool, `add`. `python bench/mcp_server.py [--http PORT]`."""

import argparse

from mcp.server.fastmcp import FastMCP

mcp = FastMCP("bench", log_level="WARNING")


@mcp.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Adds two integers."""
    return {"sum": a + b}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    port = parser.parse_args().http
    if port:
        mcp.settings.port = port
        mcp.run(transport="streamable-http")
    else:
        mcp.run()
