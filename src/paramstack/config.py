"""The one Settings object: environment variables ``PARAMSTACK_*`` over an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment, the TOML file named by
``PARAMSTACK_CONFIG`` (default ``./paramstack.toml`` when it exists), then the defaults below,
which make a fresh clone run with zero servers (SQLite file, in-process everything).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MiB = 1024 * 1024


def _config_file() -> Path:
    return Path(os.environ.get("PARAMSTACK_CONFIG", "paramstack.toml"))


class Settings(BaseSettings):
    """Service and CLI settings; print with ``paramstack config``."""

    model_config = SettingsConfigDict(env_prefix="PARAMSTACK_", extra="forbid")

    home: Path = Field(Path("var"), description="Where the SQLite file and artifacts live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<home>/paramstack.db (WAL mode)."
    )
    artifacts_dir: Path | None = Field(
        None, description="Registered artifacts are copied here; default <home>/artifacts."
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes.")

    max_body_bytes: int = Field(10 * MiB, ge=1024, description="Larger requests get HTTP 413.")
    ecg_context_max_s: float = Field(
        600.0,
        ge=0,
        description="Longest 'context' (samples preceding an ECG strip) a predict request may "
        "send; longer gets HTTP 400 context_too_long.",
    )
    result_cache_size: int = Field(
        4096, ge=0, description="Entries in the (model version, input sha256) cache; 0 = off."
    )
    ort_intra_op_threads: int = Field(
        1, ge=0, description="onnxruntime threads per session; 0 lets onnxruntime decide."
    )
    registry_refresh_s: float = Field(
        2.0, gt=0, description="How often the gateway re-reads stages and A/B tests."
    )
    log_flush_interval_s: float = Field(0.25, gt=0, description="Inference-log batch period.")
    log_batch_size: int = Field(1000, ge=1)
    log_queue_max: int = Field(
        200_000, ge=1, description="Pending log rows held in memory before requests get 503."
    )

    attest: bool = Field(
        True, description="Sign every prediction (Ed25519) when an attestation key exists."
    )
    attest_keys_dir: Path | None = Field(None, description="Default <home>/attest-keys.")
    attest_passphrase: SecretStr | None = Field(
        None,
        description="Decrypts the attestation keys; default: <home>/secrets/attest-passphrase "
        "(written by quickstart for the embedded setup; use a secret manager in production).",
    )
    audit_checkpoint_every: int = Field(1000, ge=1, description="Signed chain checkpoint period.")
    audit_checkpoint_seconds: float = Field(60.0, gt=0)
    otel_enabled: bool = Field(False, description="OpenTelemetry traces (the otel extra).")
    otel_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces URL; default: the OTEL_EXPORTER_OTLP_* environment."
    )
    otel_service_name: str = "paramstack-gateway"

    api_key_pepper: SecretStr | None = Field(
        None,
        description="HMAC key for API-key hashes (≥ 32 bytes); default: generated once into "
        "<home>/secrets/api_key_pepper. Losing it invalidates every key.",
    )
    limiter_backend: Literal["auto", "memory", "lmdb", "redis"] = Field(
        "auto",
        description="Where rate-limit and quota counters live: memory (one process), lmdb "
        "(the worker processes of one host), redis (replicas on several hosts); auto: memory "
        "with one worker, lmdb with several.",
    )
    limiter_path: Path | None = Field(
        None, description="LMDB directory for limiter_backend 'lmdb'; default <home>/limiter."
    )
    limiter_map_mb: int = Field(256, ge=1, description="Largest size of the LMDB limiter file.")
    redis_url: str | None = Field(None, description="Redis for the limiter backend 'redis'.")
    limiter_key_prefix: str = Field("paramstack:", description="Redis key namespace.")
    quota_reservation_ttl_s: float = Field(
        900.0, gt=0, description="A reservation whose replica died frees its tokens after this."
    )
    llm_models_file: Path | None = Field(
        None,
        description="YAML table of public LLM model names -> backend and upstream model "
        "(see configs/gateway/models.yaml); default: <home>/llm-models.yaml when it exists "
        "(written by `paramstack quickstart`), else no LLM models are routed.",
    )
    guard: bool = Field(True, description="Apply the guard policy on the OpenAI routes.")
    guard_policy_file: Path | None = Field(
        None, description="Guard policy YAML; default configs/policies/default.yaml."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed."
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token of the admin API (only its SHA-256 is kept in memory)."
    )
    admin_token_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 of the admin token, so the token itself is never configured; "
        "neither set: the admin API refuses every call.",
    )
    traffic_check_s: float = Field(
        5.0, gt=0, description="How often the SLO watcher judges running canaries."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'paramstack.db'}"

    @property
    def resolved_llm_models_file(self) -> Path | None:
        """The configured LLM model table, else the one ``quickstart`` writes into the home."""
        if self.llm_models_file is not None:
            return self.llm_models_file
        default = self.home / "llm-models.yaml"
        return default if default.is_file() else None

    @cached_property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.home / "artifacts"

    @property
    def resolved_limiter_path(self) -> Path:
        return self.limiter_path or self.home / "limiter"

    @cached_property
    def resolved_attest_keys_dir(self) -> Path:
        return self.attest_keys_dir or self.home / "attest-keys"

    @property
    def passphrase_file(self) -> Path:
        return self.home / "secrets" / "attest-passphrase"

    def resolved_attest_passphrase(self) -> str | None:
        if self.attest_passphrase is not None:
            return self.attest_passphrase.get_secret_value()
        if self.passphrase_file.is_file():
            return self.passphrase_file.read_text().strip()
        return None
