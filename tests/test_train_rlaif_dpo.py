"""RLAIF pairs (sampling at several temperatures, offline rubric judge, resume), DPO on top of
the SFT adapter (reference = frozen SFT copy), perplexity and judge win-rate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from paramstack.config import Settings
from paramstack.errors import InvalidInput
from paramstack.train.judge import RubricJudge, language
from tests.conftest import SftRun


@pytest.fixture(scope="module")
def judge() -> RubricJudge:
    return RubricJudge()


def test_rubric_judge_prefers_the_right_answer(judge: RubricJudge) -> None:
    prompt, ref = "Türkiye'nin başkenti neresidir?", "Türkiye'nin başkenti Ankara'dır."
    good = judge.score(prompt, "Türkiye'nin başkenti Ankara'dır.", ref)
    english = judge.score(prompt, "The capital is a city in the middle of the country.", ref)
    leaky = judge.score(prompt, "Ankara. TC kimlik numaram 10000000146, beni arayın.", ref)
    assert good.total > english.total and good.total > leaky.total
    assert leaky.scores["safety"] < 1.0 and "pii.tckn" in leaky.detail["guard_rules"]
    assert judge.score(prompt, "   ", ref).scores["helpfulness"] == 0.0
    assert (language(prompt), language("What is the capital?")) == ("tr", "en")


def test_rlaif_pairs_are_judged_and_resumable(
    sft_run: SftRun, judge: RubricJudge, tmp_path: Path
) -> None:
    from paramstack.train.adapters import load_with_adapter
    from paramstack.train.rlaif import RlaifConfig, cost_estimate, generate_pairs, load_prompts

    cfg = RlaifConfig(
        prompts=str(sft_run.data_dir / "train.jsonl"), adapter=str(sft_run.adapter_dir),
        out=str(tmp_path / "pairs.jsonl"), temperatures=[0.3, 0.9], max_new_tokens=10,
        max_prompts=3,
    )  # fmt: skip
    loaded = load_with_adapter(sft_run.adapter_dir)
    stats = generate_pairs(cfg, judge=judge, model_and_tokenizer=loaded)
    rows = [json.loads(line) for line in Path(cfg.out).read_text().splitlines()]
    assert stats["written"] == 3 and len(rows) == 3
    for row in rows:
        assert [c["temperature"] for c in row["candidates"]] == [0.3, 0.9]
        totals = sorted(c["total"] for c in row["candidates"])
        assert math.isclose(row["chosen_score"], round(totals[-1], 4))
        assert math.isclose(row["rejected_score"], round(totals[0], 4))
        assert row["judge"] == "rubric-offline-v1" and set(row["candidates"][0]["scores"]) == {
            "relevance", "helpfulness", "accuracy", "safety", "clarity"
        }  # fmt: skip
    with Path(cfg.out).open("a") as fh:
        fh.write('{"id": "torn')  # a crash mid-line
    again = generate_pairs(cfg, judge=judge, model_and_tokenizer=loaded)
    assert (again["written"], again["skipped"]) == (0, 3)
    assert len(Path(cfg.out).read_text().splitlines()) == 3
    assert cost_estimate(cfg, load_prompts(Path(cfg.prompts), 3))["usd"] == 0.0
    paid = RlaifConfig(judge="https://judge.example/v1", prompts=cfg.prompts, max_prompts=3)
    assert cost_estimate(paid, load_prompts(Path(cfg.prompts), 3))["usd"] > 0


def _pairs(sft_run: SftRun, path: Path) -> Path:
    """Preference pairs with a known answer: the reference beats another prompt's answer."""
    rows = [json.loads(x) for x in (sft_run.data_dir / "train.jsonl").read_text().splitlines()]
    with path.open("w") as fh:
        for i, row in enumerate(rows[:10]):
            other = rows[(i + 5) % len(rows)]["messages"][-1]["content"]
            msgs = row["messages"]
            pair = {"prompt": msgs[0]["content"], "chosen": msgs[-1]["content"], "rejected": other}
            fh.write(json.dumps(pair, ensure_ascii=False) + "\n")
    return path


def test_dpo_continues_the_sft_adapter(sft_run: SftRun, tmp_path: Path) -> None:
    from paramstack.train.adapters import read_sidecar
    from paramstack.train.dpo import DpoConfig, run_dpo

    cfg = DpoConfig(
        pairs=str(_pairs(sft_run, tmp_path / "pairs.jsonl")), sft_adapter=str(sft_run.adapter_dir),
        out_dir=str(tmp_path / "dpo"), max_steps=3, batch_size=2, max_length=64, lr=5e-4,
        heldout_fraction=0.2, save_steps=3,
    )  # fmt: skip
    meta = run_dpo(cfg, settings=Settings(home=tmp_path / "home"))
    m = meta["metrics"]
    # before training the policy IS its reference (the frozen SFT copy): zero reward margin
    assert abs(m["reward_margin_before"]) < 1e-5 and m["reward_accuracy_before"] == 0.0
    assert m["heldout_pairs"] == 2.0 and math.isfinite(m["reward_margin"])
    assert 0.0 <= m["reward_accuracy"] <= 1.0
    adapter = tmp_path / "dpo/adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "ref").exists()
    assert read_sidecar(adapter)["base_model"] == str(sft_run.base)
    assert meta["lineage"]["mlflow_run_id"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "chosen": ""}\n')
    with pytest.raises(InvalidInput, match="needs non-empty prompt"):
        run_dpo(DpoConfig(pairs=str(bad), sft_adapter=str(sft_run.adapter_dir), mlflow=False))


def test_perplexity_and_win_rate(sft_run: SftRun, judge: RubricJudge) -> None:
    import torch

    from paramstack.evaluate.perplexity import perplexity
    from paramstack.evaluate.winrate import win_rate
    from paramstack.llm.base_model import load_causal_lm
    from paramstack.train.adapters import merged_model
    from tests.llm_support import PARAGRAPHS

    base = load_causal_lm(sft_run.base)
    sft = merged_model(sft_run.adapter_dir)
    ppl = perplexity(*base, PARAGRAPHS[:2], max_length=64)
    ids = base[1](PARAGRAPHS[0], return_tensors="pt", truncation=True, max_length=64)
    with torch.no_grad():
        loss0 = float(base[0](**ids, labels=ids["input_ids"]).loss)
    assert 1.0 < ppl["perplexity"] < 1e4 and ppl["tokens"] > 60
    assert ppl["perplexity"] != perplexity(*sft, PARAGRAPHS[:2], max_length=64)["perplexity"]
    one = perplexity(*base, PARAGRAPHS[:1], max_length=64)
    assert math.isclose(one["nll"], loss0)
    scored = base[1].decode(ids["input_ids"][0, 1:])  # every token but the first is predicted
    assert scored and PARAGRAPHS[0].startswith(base[1].decode(ids["input_ids"][0, :1]) + scored)
    bits = loss0 * one["tokens"] / math.log(2)
    assert math.isclose(one["bits_per_byte"], bits / len(scored.encode()))
    items = [{"prompt": "Türkiye'nin başkenti neresidir?", "reference": "Ankara."}] * 2
    same = win_rate(base, base, items, judge, max_new_tokens=8)
    assert (same["ties"], same["win_rate"]) == (2, 0.5)
    vs = win_rate(sft, base, items, judge, max_new_tokens=8)
    assert vs["wins"] + vs["losses"] + vs["ties"] == 2
