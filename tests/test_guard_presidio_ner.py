"""``pii.presidio: true``: Presidio's NER (a real spaCy model, trained offline by the fixture)
masks names and places next to our finders, reversibly, in streams too; structured ids stay
ours; a missing pipeline is a ``bad_policy`` error when the guard is built, from the CLI too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from paramstack.cli.guard import app
from paramstack.errors import InvalidInput
from paramstack.guard import overrides
from paramstack.guard.checks import GuardResources
from paramstack.guard.engine import Guard
from paramstack.guard.pii import MaskSession
from paramstack.guard.policy import Direction, Policy
from tests.ner_fixture import ner_model  # noqa: F401  (the session fixture)

BASE = Policy.from_yaml()
TR = "Dün Ayşe Yılmaz ile konuştum, yarın Ankara merkezde buluşacağız."
EN = "Please send the report to John Smith at the London office."


def _guard(tmp_path: Path, **pii: object) -> Guard:
    policy = BASE.with_overrides({"pii": pii}, tenant="t") if pii else BASE
    return Guard(policy, GuardResources(home=tmp_path))


@pytest.fixture
def ner_guard(ner_model: Path, tmp_path: Path) -> Guard:  # noqa: F811
    return _guard(tmp_path, presidio=True, presidio_model=str(ner_model))


def test_names_and_places_are_masked_only_with_the_backend_on(
    ner_guard: Guard, tmp_path: Path
) -> None:
    tr = ner_guard.run(TR, Direction.INPUT).text
    en = ner_guard.run(EN, Direction.INPUT).text
    assert tr == "Dün [PERSON] ile konuştum, yarın [ADDRESS] merkezde buluşacağız."
    assert en == "Please send the report to [PERSON] at the [ADDRESS] office."
    off = _guard(tmp_path)
    assert off.run(TR, Direction.INPUT).text == TR  # our patterns find no names
    assert off.run(EN, Direction.INPUT).text == EN


def test_entities_are_chosen_by_the_policy(ner_model: Path, tmp_path: Path) -> None:  # noqa: F811
    people = _guard(
        tmp_path, presidio=True, presidio_model=str(ner_model), presidio_entities=["PERSON"]
    )
    assert people.run(EN, Direction.INPUT).text == (
        "Please send the report to [PERSON] at the London office."
    )


def test_masks_are_reversible_and_the_answers_placeholders_survive_the_ner(
    ner_guard: Guard,
) -> None:
    session = MaskSession()
    sent = ner_guard.check_input(TR, session=session).text
    assert sent == "Dün [PERSON_1] ile konuştum, yarın [ADDRESS_1] merkezde buluşacağız."
    answer = ner_guard.check_output(
        "Tamam, [PERSON_1] ile [ADDRESS_1] merkezde görüşün; Mehmet Demir de gelecek.",
        session=session,
    ).text
    # the caller's own values come back; a name the model added on its own is masked
    assert answer == "Tamam, Ayşe Yılmaz ile Ankara merkezde görüşün; [PERSON] de gelecek."


def test_structured_ids_stay_with_our_finders(ner_guard: Guard) -> None:
    text = "Müşteri Elif Kaya, TCKN 10000000146, e-posta elif.kaya@ornek.com, sipariş 12345678901."
    result = ner_guard.run(text, Direction.INPUT)
    assert result.text.startswith("Müşteri [PERSON], TCKN [TCKN], ")
    # Presidio's loose phone matcher would take the 11-digit order number: it does not run,
    # only the NER's entities come back
    assert not [f for f in result.findings if f.entity == "PHONE"]
    ner = {f.entity for f in result.findings if f.rule == "presidio.ner"}
    assert "PERSON" in ner and ner <= {"PERSON", "ADDRESS"}
    ours = {(f.entity, f.rule) for f in result.findings if f.rule != "presidio.ner"}
    assert ours == {("TCKN", "pii.tckn"), ("EMAIL", "pii.email")}


def test_streamed_answer_is_masked_like_the_whole_one(ner_guard: Guard) -> None:
    text = (
        "Kayıtlara göre hastamız Zeynep Şahin dün akşam saatlerinde İzmir hastanesinde "
        "yatıyor; doktoru ayrıca Ahmet Öztürk ile görüşmenizi önerdi. " * 2
    )
    whole = ner_guard.check_output(text).text
    stream = ner_guard.stream_output()
    pieces = [stream.feed(text[i : i + 7]) for i in range(0, len(text), 7)]
    assert "".join(pieces) + stream.finish() == whole
    assert whole.count("[PERSON]") == 4 and "Zeynep" not in whole
    # the NER is costly: the stream is scanned every 64 new characters, not at every chunk
    released = [p for p in pieces if p]
    assert ner_guard.stream_step == 64 and len(released) <= len(text) // 64


def test_tenant_guards_share_one_loaded_pipeline(ner_guard: Guard, tmp_path: Path) -> None:
    other = Guard(
        ner_guard.policy.with_overrides({"toxicity": {"input": "off"}}, tenant="b"),
        GuardResources(home=tmp_path),
    )
    assert other.checks["pii"].recognizers[1] is ner_guard.checks["pii"].recognizers[1]  # type: ignore[attr-defined]


def test_a_missing_or_unusable_pipeline_is_a_bad_policy_error(tmp_path: Path) -> None:
    import spacy

    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    cases = {
        str(tmp_path / "nowhere"): "neither a spaCy pipeline directory",
        "xx_not_a_package": "neither a spaCy pipeline directory",
        str(blank): "has no 'ner' component",
        str(tmp_path): "cannot load spaCy pipeline",  # a directory, not a pipeline
    }
    for model, message in cases.items():
        with pytest.raises(InvalidInput, match=message) as caught:
            _guard(tmp_path, presidio=True, presidio_model=model)
        assert caught.value.code == "bad_policy"
    with pytest.MonkeyPatch.context() as patch:  # the extra not installed: import fails
        patch.setitem(sys.modules, "presidio_analyzer", None)
        with pytest.raises(InvalidInput, match="paramstack\\[presidio\\]"):
            _guard(tmp_path, presidio=True, presidio_model=str(blank))
    with pytest.raises(InvalidInput, match="presidio_entities") as bad:
        Policy.from_dict({"pii": {"presidio_entities": ["PHONE_NUMBER"]}})
    assert bad.value.code == "bad_policy"


def test_a_tenant_override_with_a_missing_pipeline_is_refused_before_storage(
    ner_model: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    good = {"pii": {"presidio": True, "presidio_model": str(ner_model)}}
    assert overrides.merge(BASE, good, "alpha").pii.presidio_model == str(ner_model)
    with pytest.raises(InvalidInput, match="nowhere"):
        overrides.merge(
            BASE, {"pii": {"presidio": True, "presidio_model": str(tmp_path / "nowhere")}}, "a"
        )


def test_guard_check_cli_uses_the_policy(
    ner_model: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path / "home"))
    policy = BASE.model_dump(mode="json")
    policy["pii"].update(presidio=True, presidio_model=str(ner_model))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    runner = CliRunner()
    done = runner.invoke(app, ["check", EN, "--policy", str(path)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["text"] == (
        "Please send the report to [PERSON] at the [ADDRESS] office."
    )
    policy["pii"]["presidio_model"] = str(tmp_path / "nowhere")
    path.write_text(yaml.safe_dump(policy))
    refused = runner.invoke(app, ["check", EN, "--policy", str(path)])
    assert refused.exit_code != 0 and isinstance(refused.exception, InvalidInput)
    assert refused.exception.exit_code == 2 and "nowhere" in refused.exception.message


@pytest.mark.slow
def test_guard_eval_times_the_policy_with_the_backend_on(
    ner_model: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARAMSTACK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")  # rich would wrap the table's labels
    out = tmp_path / "eval.json"
    args = ["eval", "--sets", "latency", "--presidio-model", str(ner_model), "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    report = json.loads(out.read_text())
    ours, on = report["latency_ms_1kB"], report["latency_ms_1kB_presidio_on"]
    assert on["pii_p50"] > ours["pii_p50"] > 0  # the NER runs on every text
    assert "latency, pii.presidio on" in done.output


def test_a_pipeline_no_guard_uses_is_released(ner_model: Path, tmp_path: Path) -> None:  # noqa: F811
    """Pipelines (tens of MB) are shared weakly: a tenant override's guard that is dropped
    takes its pipeline with it instead of pinning it until restart."""
    import gc
    import shutil

    from paramstack.guard import pii_ner

    own = tmp_path / "own-ner"
    shutil.copytree(ner_model, own)
    guard = _guard(tmp_path, presidio=True, presidio_model=str(own))
    assert "[PERSON_1]" in guard.check_input(EN, session=MaskSession()).text
    key = str(own.resolve())
    assert any(k[0] == key for k in list(pii_ner._SHARED))
    del guard
    gc.collect()
    assert not any(k[0] == key for k in list(pii_ner._SHARED))
