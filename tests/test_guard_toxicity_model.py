"""The optional toxicity classifier: trained for real on the Turkish frames (split by frame),
switched on by the policy with its threshold, evaluated next to the lexicon, refused clearly
when its model file is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from paramstack.errors import InvalidInput
from paramstack.guard.checks import GuardResources
from paramstack.guard.engine import Guard
from paramstack.guard.evaluate import toxicity_metrics
from paramstack.guard.injection_model import InjectionModel, TrainConfig, train
from paramstack.guard.policy import Policy
from paramstack.guard.toxicity_data import split, turkish_frames

CFG = TrainConfig(bits=15, epochs=80, folds=3, target_fpr=0.05)


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tox")
    rows = split(turkish_frames(), "train")
    model, meta = train(
        [r.text for r in rows],
        [r.label for r in rows],
        CFG,
        [f"tr:{r.source}" for r in rows],
        [r.key for r in rows],  # out-of-fold by frame: thresholds fit for new wording
    )
    model.save(home / "guard" / "toxicity_model.npz", meta)
    return home


def test_split_is_by_frame_so_test_wording_is_unseen() -> None:
    rows = turkish_frames()
    train_keys = {r.key for r in split(rows, "train")}
    test_keys = {r.key for r in split(rows, "test")}
    assert train_keys and test_keys and not train_keys & test_keys
    assert {r.label for r in split(rows, "test")} == {0, 1}


def test_classifier_generalises_to_unseen_frames(model_home: Path) -> None:
    model = InjectionModel.load(model_home / "guard" / "toxicity_model.npz")
    report = toxicity_metrics(model, split(turkish_frames(), "test"))
    tr = report["classifier"]["tr"]
    assert tr["toxic"] > 0 and tr["benign"] > 0
    assert tr["recall"] >= 0.6 and tr["fpr"] <= 0.2, tr
    assert report["either"]["tr"]["recall"] >= tr["recall"]  # either layer may flag


def test_policy_switches_the_classifier_on_with_its_threshold(model_home: Path) -> None:
    text = "Sen tam bir beyinsiz dangalaksın, kimse seni istemiyor."  # not in the lexicon
    base = Policy.from_yaml()
    plain = Guard(base, GuardResources(home=model_home))
    assert plain.checks["toxicity"].model is None  # type: ignore[attr-defined]
    assert plain.check_output(text).warnings == []  # the lexicon alone misses it
    on = base.with_overrides({"toxicity": {"classifier": True}})
    result = Guard(on, GuardResources(home=model_home)).check_output(text)
    assert "toxicity.classifier" in result.warnings
    strict = base.with_overrides({"toxicity": {"classifier": True, "classifier_threshold": 1.0}})
    assert Guard(strict, GuardResources(home=model_home)).check_output(text).warnings == []


def test_missing_model_file_is_a_clear_policy_error(tmp_path: Path) -> None:
    on = Policy.from_yaml().with_overrides({"toxicity": {"classifier": True}})
    with pytest.raises(InvalidInput, match="train-toxicity") as caught:
        Guard(on, GuardResources(home=tmp_path))
    assert caught.value.code == "bad_policy"


def test_injection_and_toxicity_share_one_ngram_pass(model_home: Path) -> None:
    from paramstack.guard.checks import TextView
    from paramstack.guard.injection_model import load_shared

    on = Policy.from_yaml().with_overrides({"toxicity": {"classifier": True}})
    guard = Guard(
        on,
        GuardResources(
            home=model_home,
            injection_model=load_shared(model_home / "guard" / "toxicity_model.npz"),
        ),
    )
    text = "Sen tam bir beyinsiz dangalaksın, kimse seni istemiyor."
    view = TextView(text)
    found = [f for chk in guard.checks.values() for f in chk.scan(view)]
    assert len(view._ids) == 1  # same settings: one feature pass serves both classifiers
    tox = guard.checks["toxicity"].model  # type: ignore[attr-defined]
    assert any(f.rule == "toxicity.classifier" for f in found)
    assert [f.score for f in found if f.rule == "toxicity.classifier"] == [
        pytest.approx(tox.score(text))
    ]
