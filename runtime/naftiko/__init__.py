"""Naftiko runtime: serve Naftiko capability files as REST APIs and MCP servers."""

__version__ = "0.1.0"
