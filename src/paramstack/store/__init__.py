"""Persistence: SQLAlchemy 2 tables, engine/session factory and Alembic migrations.

Knows no domain logic: the registry and the gateway decide what to write.
"""
