"""Per-tenant retrieval: ingestion, hybrid Turkish-first search and citations.

A library first (the CLI and the gateway wire it in); it never imports ``gateway/``.
"""
