"""Corpus building: ingest, normalise, deduplicate, filter (language, quality, PII), shard.

The build side only: the gateway never imports this package.
"""
