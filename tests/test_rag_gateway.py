"""``/v1/rag/*`` through a live gateway: tenant from the key only, isolation by every route."""

from __future__ import annotations

import time
from typing import Any

import httpx

from paramstack.config import Settings
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store.engine import make_engine, session_factory, transaction
from tests.conftest import run_server
from tests.rag_support import HOSPITAL_A, HOSPITAL_B


def make_tenants(settings: Settings) -> dict[str, str]:
    """An admin key per tenant under the tenant's id, a member key under ``<id>/member``."""
    engine = make_engine(settings.resolved_database_url)
    keys = {}
    try:
        with transaction(session_factory(engine)) as s:
            for tid in ("hosp-a", "hosp-b"):
                tenants.create_tenant(s, TenantSpec(id=tid, name=tid))
                for role, name in (("admin", tid), ("member", f"{tid}/member")):
                    keys[name] = api_keys.create_key(
                        s, tid, KeySpec(role=role), resolve_pepper(settings)
                    ).plaintext
    finally:
        engine.dispose()
    return keys


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ingest(http: httpx.Client, key: str, corpus: dict[str, str], **extra: Any) -> dict[str, Any]:
    docs = [{"id": k, "text": v, "metadata": {"dept": "acil"}} for k, v in corpus.items()]
    r = http.post("/v1/rag/documents", json={"documents": docs, **extra}, headers=auth(key))
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = http.get(f"/v1/rag/jobs/{job['id']}", headers=auth(key)).json()
    assert job["status"] == "succeeded", job
    return job


def query(http: httpx.Client, key: str, **body: Any) -> httpx.Response:
    return http.post("/v1/rag/query", json={"k": 10, **body}, headers=auth(key))


def test_rag_routes_isolate_tenants_by_every_route(settings: Settings) -> None:
    keys = make_tenants(settings)
    a, b = keys["hosp-a"], keys["hosp-b"]
    with run_server(settings) as server, server.client() as http:
        job_a = ingest(http, a, HOSPITAL_A)
        assert job_a["done"] == 3 and job_a["chunks"] == 3 and "tenant" not in job_a
        ingest(http, b, HOSPITAL_B)

        hits = query(http, a, query="aspirin ne zaman verilir").json()["data"]
        assert (
            hits[0]["doc_id"] == "kalp.md"
            and {"start", "end", "source", "chunk_id"} <= hits[0].keys()
        )
        assert all(h["doc_id"] in HOSPITAL_A for h in hits)
        # B cannot reach A's chunks: not by query, filter, collection name, body field or id
        for body in (
            {"query": "kalp krizi aspirin"},
            {"query": "aspirin", "filters": {"tenant": "hosp-a"}},
            {"query": "aspirin", "filters": {"dept": "acil"}},
            {"query": "aspirin", "collection": "default"},
        ):
            r = query(http, b, **body)
            assert r.status_code == 200
            assert {h["doc_id"] for h in r.json()["data"]} <= {"gizli.txt"}, body
        r = query(http, b, query="aspirin", tenant="hosp-a")
        assert r.status_code == 400 and r.json()["error"]["param"]
        assert http.get(f"/v1/rag/jobs/{job_a['id']}", headers=auth(b)).status_code == 404
        assert http.delete("/v1/rag/documents/kalp.md", headers=auth(b)).status_code == 404
        listed = http.get("/v1/rag/documents", headers=auth(b)).json()["data"]
        assert [d["id"] for d in listed] == ["gizli.txt"]
        # A's data is untouched by B's attempts; A can delete its own document
        assert len(http.get("/v1/rag/documents", headers=auth(a)).json()["data"]) == 3
        r = http.delete("/v1/rag/documents/kalp.md", headers=auth(a))
        assert r.status_code == 200 and r.json()["chunks"] == 1
        assert all(h["doc_id"] != "kalp.md" for h in query(http, a, query="aspirin").json()["data"])
        # no key, bad input, wrong embedder
        assert http.post("/v1/rag/query", json={"query": "x"}).status_code == 401
        assert query(http, a, query="").status_code == 400
        assert query(http, a, query="x", mode="fuzzy").status_code == 400
        r = http.post(
            "/v1/rag/documents",
            json={"documents": [{"id": "x", "text": "y"}], "embedder": "e5-small-enpt"},
            headers=auth(a),
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "embedder_mismatch"
        # an embedder spec is server configuration: the API refuses what the operator did not
        # list (a URL would receive the embedding key, a path would be loaded from disk)
        for spec in ("openai:http://attacker.example|m", "own:/etc", "st:/tmp/x",
                     "mix:1*use-m3;1*own:/etc"):  # fmt: skip
            r = http.post(
                "/v1/rag/documents",
                json={
                    "documents": [{"id": "x", "text": "y"}],
                    "embedder": spec,
                    "collection": "other",
                },
                headers=auth(a),
            )
            assert r.status_code == 403, spec
            assert r.json()["error"]["code"] == "embedder_not_allowed", spec


def test_only_admin_keys_change_documents_and_jobs_outlive_the_process(
    settings: Settings,
) -> None:
    keys = make_tenants(settings)
    admin, member, other_admin = keys["hosp-a"], keys["hosp-a/member"], keys["hosp-b"]
    docs = {"documents": [{"id": "kalp.md", "text": HOSPITAL_A["kalp.md"]}]}
    with run_server(settings) as server, server.client() as http:
        r = http.post("/v1/rag/documents", json=docs, headers=auth(member))
        assert r.status_code == 403
        err = r.json()["error"]
        assert err["code"] == "admin_key_required" and err["type"] == "permission_error"
        job = ingest(http, admin, {"kalp.md": HOSPITAL_A["kalp.md"]})
        assert query(http, member, query="kalp krizi aspirin").json()["data"][0]["doc_id"] == (
            "kalp.md"
        )  # querying stays open to every key of the tenant
        assert http.delete("/v1/rag/documents/kalp.md", headers=auth(member)).status_code == 403
        assert http.get("/v1/rag/documents", headers=auth(member)).status_code == 200
    # a new process (same database) still knows the job; another tenant still cannot see it
    with run_server(settings) as server, server.client() as http:
        again = http.get(f"/v1/rag/jobs/{job['id']}", headers=auth(member))
        assert again.status_code == 200
        assert again.json()["status"] == "succeeded" and again.json()["chunks"] == job["chunks"]
        assert again.json()["finished_at"] >= again.json()["created_at"]
        assert http.get(f"/v1/rag/jobs/{job['id']}", headers=auth(other_admin)).status_code == 404
        assert http.delete("/v1/rag/documents/kalp.md", headers=auth(admin)).status_code == 200
