"""The MCP server: the official SDK's MCPServer with our tools, around one Coordinator per lifespan."""

from parallel_coordinator.server.app import create_server

__all__ = ["create_server"]
