"""``paramstack quickstart`` sets up both halves of the main job: the digits classifier and
the offline base LLM served in-process, with a demo tenant whose key works at once through
the official ``openai`` client against the served gateway."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import yaml

from paramstack.config import Settings
from tests.conftest import run_server
from tests.test_cli import cli


def test_quickstart_serves_the_local_llm_to_a_demo_tenant(
    settings: Settings, base_model_dir: Path
) -> None:
    first = cli(settings, "quickstart", "--epochs", "1", "--base-model", str(base_model_dir))
    assert first.returncode == 0, first.stderr[-2000:]
    keys = re.findall(r"^\s+(\S{40,})$", first.stdout, flags=re.M)
    assert len(keys) == 1, first.stdout
    table = yaml.safe_load((settings.home / "llm-models.yaml").read_text())
    assert [m["name"] for m in table["models"]] == ["smollm2-135m", "smollm2-embed"]
    assert settings.resolved_llm_models_file == settings.home / "llm-models.yaml"

    again = cli(settings, "quickstart", "--epochs", "1", "--base-model", str(base_model_dir))
    assert again.returncode == 0 and "tenant 'demo' exists" in again.stdout
    assert not re.findall(r"^\s+(\S{40,})$", again.stdout, flags=re.M), "no second key"

    with run_server(Settings(home=settings.home)) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=keys[0], max_retries=0)
        assert {"smollm2-135m", "smollm2-embed"} <= {m.id for m in client.models.list()}
        answer = client.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=12,
            temperature=0,
        )
        client.close()
    assert "Paris" in (answer.choices[0].message.content or "")
    assert answer.usage is not None and answer.usage.prompt_tokens > 10
