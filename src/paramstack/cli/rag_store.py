"""``paramstack rag migrate-store``: convert an old single-shard edge store in place, once."""

from __future__ import annotations

from typing import Annotated

import typer

from paramstack.cli.context import console, settings


def migrate_store_cmd(
    store: Annotated[
        str | None, typer.Option("--store", help="Store folder; default $PARAMSTACK_RAG_STORE.")
    ] = None,
) -> None:
    """Rewrite an old single-shard edge store as one shard per (tenant, collection).

    Points are copied as stored (nothing is re-embedded) and counted per collection before
    the new layout replaces the old; the old shard stays as ``legacy-shard`` to delete later.
    """
    from paramstack.rag.settings import store_url
    from paramstack.rag.stores.edge_migrate import migrate_store

    path = store or store_url(settings().home)
    report = migrate_store(
        path, on_collection=lambda t, c, n: console.print(f"{t}/{c}: {n} points")
    )
    console.print(
        f"migrated {report.points} points in {len(report.collections)} collections"
        + (
            f"; {report.orphans} points without a collection record left behind"
            if report.orphans
            else ""
        )
    )
    console.print(f"old shard kept at {path}/legacy-shard (delete it once checked)")
