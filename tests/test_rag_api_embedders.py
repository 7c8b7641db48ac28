"""The API's embedder allowlist: bundled models always, operator-listed specs, mixes of both."""

from __future__ import annotations

import pytest

from paramstack.errors import Forbidden
from paramstack.rag.settings import check_api_embedder


def test_bundled_and_listed_specs_pass_others_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARAMSTACK_RAG_API_EMBEDDERS", raising=False)
    check_api_embedder("use-m3")
    check_api_embedder("mix:1*use-m3;2*e5-small")
    with pytest.raises(Forbidden) as refused:
        check_api_embedder("own:/srv/emb/hosp-a")
    assert refused.value.code == "embedder_not_allowed" and refused.value.param == "embedder"

    monkeypatch.setenv("PARAMSTACK_RAG_API_EMBEDDERS", " own:/srv/emb/hosp-a , st:/srv/st ")
    check_api_embedder("own:/srv/emb/hosp-a")
    check_api_embedder("mix:0.5*own:/srv/emb/hosp-a;0.5*use-m3")
    for spec in ("own:/srv/emb", "mix:1*own:/srv/emb/hosp-a;1*own:/etc", "mix:", "openai:x|m"):
        with pytest.raises(Forbidden):
            check_api_embedder(spec)
