"""``pii.presidio: true`` on the OpenAI routes (official ``openai`` client, loopback upstream, a
real spaCy NER trained by the fixture): the upstream never sees the caller's name, the caller
gets it back, and a tenant override switches the backend on for that tenant only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paramstack.cli.app import app
from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.guard.pii_ner import NerRecognizer
from paramstack.guard.pii_patterns import Span
from paramstack.guard.policy import Policy
from tests.ner_fixture import ner_model  # noqa: F401  (the session fixture)
from tests.test_openai_gateway import open_gateway
from tests.test_openai_guard import ask_echo, echo_models  # noqa: F401  (adds the echo model)
from tests.test_tenant_guard_policy import two_tenants

NAME, PLACE = "John Smith", "London"
USER_TEXT = f"Please send the report to {NAME} at the {PLACE} office."


def _with_ner(settings: Settings, tmp_path: Path, model: Path) -> Settings:
    """The settings with the default policy plus the fixture's NER as the Presidio backend."""
    policy = Policy.from_yaml().model_dump(mode="json")
    policy["pii"].update(presidio=True, presidio_model=str(model))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return settings.model_copy(update={"guard_policy_file": path})


@pytest.mark.usefixtures("echo_models")
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_never_sees_the_name_and_the_caller_gets_it_back(
    settings: Settings,
    tmp_path: Path,
    ner_model: Path,  # noqa: F811
    stream: bool,
) -> None:
    cfg = _with_ner(settings, tmp_path, ner_model)
    with open_gateway(cfg, tmp_path, tokens_per_day=100_000) as gw:
        answer = "".join(ask_echo(gw, USER_TEXT, stream))
        seen = list(gw.upstream.seen)
    assert seen and all(NAME not in t and PLACE not in t for t in seen)
    assert any("[PERSON_1]" in t and "[ADDRESS_1]" in t for t in seen)
    assert answer.startswith(USER_TEXT)  # echoed back with the caller's own values restored


def test_a_tenant_override_switches_the_backend_on_for_that_tenant_only(
    settings: Settings,
    tmp_path: Path,
    ner_model: Path,  # noqa: F811
) -> None:
    override = {"pii": {"presidio": True, "presidio_model": str(ner_model)}}
    with two_tenants(settings, tmp_path, {"alpha": override}) as gw:
        alpha = gw.upstream_saw("alpha", USER_TEXT)
        beta = gw.upstream_saw("beta", USER_TEXT)
    assert alpha and all(NAME not in t for t in alpha) and any("[PERSON_1]" in t for t in alpha)
    assert any(NAME in t for t in beta)  # the base policy has no NER


def test_serve_refuses_a_policy_naming_a_missing_pipeline_before_starting(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"pii": {"presidio": True, "presidio_model": "/nowhere/ner"}}))
    monkeypatch.setenv("PARAMSTACK_HOME", str(settings.home))
    monkeypatch.setenv("PARAMSTACK_GUARD_POLICY_FILE", str(path))
    served = CliRunner().invoke(app, ["serve", "--no-migrate"])  # refused before uvicorn starts
    assert isinstance(served.exception, InvalidInput) and served.exception.exit_code == 2
    assert served.exception.code == "bad_policy" and "/nowhere/ner" in served.exception.message


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.mark.usefixtures("echo_models")
@pytest.mark.parametrize("stream", [False, True])
def test_the_ner_never_runs_on_the_event_loop(
    settings: Settings,
    tmp_path: Path,
    ner_model: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    """An NER costs milliseconds per call: run inline it would stall every other request on
    the worker's loop, so a guard with one runs prompt, answer and stream checks in a thread."""
    calls: list[bool] = []
    analyze = NerRecognizer.analyze

    def recorded(self: NerRecognizer, text: str) -> list[Span]:
        calls.append(_on_event_loop())
        return analyze(self, text)

    monkeypatch.setattr(NerRecognizer, "analyze", recorded)
    cfg = _with_ner(settings, tmp_path, ner_model)
    with open_gateway(cfg, tmp_path, tokens_per_day=100_000) as gw:
        answer = "".join(ask_echo(gw, USER_TEXT, stream))
    assert answer.startswith(USER_TEXT)
    assert len(calls) >= 2  # the prompt, then the answer (or its stream's scans)
    assert not any(calls), "the NER ran on the event loop"
