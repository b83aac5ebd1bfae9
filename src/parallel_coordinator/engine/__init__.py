"""The engine: sessions, their run loop and every decision about attempts. Knows no MCP and no presentation."""
