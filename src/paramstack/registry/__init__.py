"""The model registry: versions, stages, artifacts with lineage, A/B tests and daily metrics.

It knows no HTTP: the gateway and the CLI both call these functions with a SQLAlchemy session.
"""
