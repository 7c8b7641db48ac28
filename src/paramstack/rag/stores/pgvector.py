"""PostgreSQL + pgvector: the scale-out path for teams that already run PostgreSQL.

One table per vector size shared by every tenant (rows carry ``tenant`` and ``collection``,
the leading columns of every index), an HNSW index for dense search with pgvector 0.8's
iterative scan so tenant filters do not starve the result list, and PostgreSQL's own full-text
index over the same folded, prefix-truncated terms for the lexical side. PostgreSQL has no
BM25: ``ts_rank`` (term frequency with length normalisation, no IDF) is the lexical score here.
"""

# Table names are built only from an int (the vector size); every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import re
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from paramstack.rag.stores.protocol import CollectionInfo, Filters, hit_of, payload_of, point_id
from paramstack.rag.textproc import terms
from paramstack.rag.types import Hit, StoredChunk

_TERM = re.compile(r"^\w+$")
_COLUMNS = "doc_id, version, idx, text, start_at, end_at, source, meta"


def _url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PgVectorStore:
    def __init__(self, url: str) -> None:
        self._conn = psycopg.connect(_url(url), autocommit=True)
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self._conn)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS rag_collections (tenant text, collection text,"
            " embedder text NOT NULL, dim int NOT NULL, PRIMARY KEY (tenant, collection))"
        )
        self._conn.execute("SET hnsw.iterative_scan = relaxed_order")

    def _table(self, dim: int) -> str:
        name = f"rag_chunks_d{int(dim)}"
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (id uuid PRIMARY KEY, tenant text NOT NULL,"
            " collection text NOT NULL, doc_id text NOT NULL, version text NOT NULL,"
            " idx int NOT NULL, text text NOT NULL, start_at int NOT NULL, end_at int NOT NULL,"
            f" source text NOT NULL, meta jsonb NOT NULL, dense vector({int(dim)}) NOT NULL,"
            " lex tsvector NOT NULL)"
        )
        self._conn.execute(
            f"CREATE INDEX IF NOT EXISTS {name}_scope ON {name} (tenant, collection, doc_id)"
        )
        self._conn.execute(
            f"CREATE INDEX IF NOT EXISTS {name}_hnsw ON {name} USING hnsw (dense vector_cosine_ops)"
        )
        self._conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_lex ON {name} USING gin (lex)")
        return name

    def _name(self, tenant: str, collection: str) -> str | None:
        info = self.get_collection(tenant, collection)
        return f"rag_chunks_d{info.dim}" if info else None

    def get_collection(self, tenant: str, collection: str) -> CollectionInfo | None:
        row = self._conn.execute(
            "SELECT embedder, dim FROM rag_collections WHERE tenant = %s AND collection = %s",
            (tenant, collection),
        ).fetchone()
        return CollectionInfo(str(row[0]), int(row[1])) if row else None

    def create_collection(self, tenant: str, collection: str, info: CollectionInfo) -> None:
        self._table(info.dim)
        self._conn.execute(
            "INSERT INTO rag_collections VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (tenant, collection, info.embedder, info.dim),
        )

    def upsert(self, tenant: str, collection: str, items: list[StoredChunk]) -> None:
        name = self._name(tenant, collection)
        if name is None or not items:
            return
        rows = []
        for it in items:
            p = payload_of(tenant, collection, it)
            rows.append(
                (
                    point_id(tenant, collection, it.chunk.chunk_id, it.chunk.version),
                    tenant, collection, p["doc_id"], p["version"], p["index"], p["text"],
                    p["start"], p["end"], p["source"], Jsonb(p["meta"]),
                    it.dense, " ".join(terms(it.chunk.text)),
                )
            )  # fmt: skip
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s::vector, to_tsvector('simple', %s)) ON CONFLICT (id) DO UPDATE SET"
                " text = EXCLUDED.text, dense = EXCLUDED.dense, lex = EXCLUDED.lex",
                rows,
            )

    def delete_document(
        self, tenant: str, collection: str, doc_id: str, keep_version: str | None = None
    ) -> int:
        name = self._name(tenant, collection)
        if name is None:
            return 0
        sql = f"DELETE FROM {name} WHERE tenant = %s AND collection = %s AND doc_id = %s"
        args: tuple[Any, ...] = (tenant, collection, doc_id)
        if keep_version is not None:
            sql += " AND version <> %s"
            args += (keep_version,)
        return int(self._conn.execute(sql, args).rowcount)

    def doc_version(self, tenant: str, collection: str, doc_id: str) -> str | None:
        name = self._name(tenant, collection)
        if name is None:
            return None
        row = self._conn.execute(
            f"SELECT version FROM {name} WHERE tenant = %s AND collection = %s AND doc_id = %s"
            " LIMIT 1",
            (tenant, collection, doc_id),
        ).fetchone()
        return str(row[0]) if row else None

    def count(self, tenant: str, collection: str, doc_id: str | None = None) -> int:
        name = self._name(tenant, collection)
        if name is None:
            return 0
        sql = f"SELECT count(*) FROM {name} WHERE tenant = %s AND collection = %s"
        args: tuple[Any, ...] = (tenant, collection)
        if doc_id is not None:
            sql += " AND doc_id = %s"
            args += (doc_id,)
        row = self._conn.execute(sql, args).fetchone()
        return int(row[0]) if row else 0

    def documents(self, tenant: str, collection: str) -> dict[str, str]:
        name = self._name(tenant, collection)
        if name is None:
            return {}
        rows = self._conn.execute(
            f"SELECT DISTINCT doc_id, version FROM {name} WHERE tenant = %s AND collection = %s",
            (tenant, collection),
        ).fetchall()
        return {str(d): str(v) for d, v in rows}

    @staticmethod
    def _where(filters: Filters) -> tuple[str, list[Any]]:
        sql, args = "", []
        for key, value in filters.items():
            sql += " AND meta ->> %s = %s"
            args += [key, str(value).lower() if isinstance(value, bool) else str(value)]
        return sql, args

    def _rows(self, sql: str, args: list[Any]) -> list[Hit]:
        hits = []
        for row in self._conn.execute(sql, args).fetchall():
            d, v, i, text, s, e, src, meta, score = row
            payload = {"doc_id": d, "version": v, "index": i, "text": text, "start": s,
                       "end": e, "source": src, "meta": meta}  # fmt: skip
            hits.append(hit_of(payload, float(score)))
        return hits

    def dense_search(
        self, tenant: str, collection: str, vector: list[float], k: int, filters: Filters
    ) -> list[Hit]:
        name = self._name(tenant, collection)
        if name is None:
            return []
        where, args = self._where(filters)
        vec = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
        sql = (
            f"SELECT {_COLUMNS}, 1 - (dense <=> %s::vector) FROM {name}"
            f" WHERE tenant = %s AND collection = %s{where}"
            " ORDER BY dense <=> %s::vector LIMIT %s"
        )
        return self._rows(sql, [vec, tenant, collection, *args, vec, k])

    def lexical_search(
        self, tenant: str, collection: str, text: str, k: int, filters: Filters
    ) -> list[Hit]:
        name = self._name(tenant, collection)
        words = sorted({t for t in terms(text) if _TERM.match(t)})
        if name is None or not words:
            return []
        where, args = self._where(filters)
        tsq = " | ".join(f"'{w}'" for w in words)
        sql = (
            f"SELECT {_COLUMNS}, ts_rank(lex, q) AS r FROM {name}, to_tsquery('simple', %s) q"
            f" WHERE tenant = %s AND collection = %s AND lex @@ q{where} ORDER BY r DESC LIMIT %s"
        )
        return self._rows(sql, [tsq, tenant, collection, *args, k])

    def close(self) -> None:
        self._conn.close()
