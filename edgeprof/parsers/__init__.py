"""Parsers for what the tools edgeprof drives print; one module per tool, each with parse(text)."""
