#!/usr/bin/env python3
"""Per-beat latency of the ECG beat classifier: onnxruntime vs PyTorch eager, same model,
same beats, same run; plus the end-to-end ``analyze_strip`` time for 10 s MIT-BIH strips.

From the repository root, after ``paramstack ecg train`` (and optionally ``ecg export``)::

    .venv/bin/python bench/ecg.py [--config configs/ecg/default.yaml | --model-dir DIR]

Both engines get one intra-op thread (a server runs one session per worker; extra threads
only help big batches on an idle machine). Measured per engine:

- batch 1: each beat its own call, p50/p99 latency per beat and beats/s;
- batch 12 (a 10 s strip's beats in one call) and batch 256: latency per beat, beats/s.

``--context S`` (session 7) also times each 10 s strip sent with the S seconds before it
(``analyze_strip(..., context=...)`` and the predict endpoint's ``context`` field), beside
the same strips without context in the same run (ratio with / without).

Targets (issue 4): ONNX >= 2x PyTorch beats/s at batch 1, p99 per beat < 1 ms. Writes
``bench/results/ecg.json``; ``--strict`` exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import torch

from paramstack.config import Settings
from paramstack.ecg.beats import BeatWindow
from paramstack.ecg.config import load_config
from paramstack.ecg.dataset import load_beats
from paramstack.ecg.export import EcgArtifact, export_ecg_onnx, register_ecg
from paramstack.ecg.models import PackedInput
from paramstack.ecg.records import read_record, split_records
from paramstack.ecg.strip import analyze_strip, onnx_runner, pack_inputs, strip_options
from paramstack.ecg.train import load_trained, resolve_paths
from paramstack.registry import versions as registry
from paramstack.store import migrate
from paramstack.store.engine import make_engine, session_factory, transaction
from paramstack.store.tables import Stage


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def per_beat(
    run: Callable[[np.ndarray], object], packed: np.ndarray, batch: int
) -> dict[str, float]:
    """Latency per beat (ms) over calls of ``batch`` beats, after a warm-up."""
    calls = [packed[i : i + batch] for i in range(0, len(packed) - batch + 1, batch)]
    for chunk in calls[:20]:
        run(chunk)
    times = []
    started = time.perf_counter()
    for chunk in calls:
        t0 = time.perf_counter()
        run(chunk)
        times.append((time.perf_counter() - t0) * 1000.0 / batch)
    total = time.perf_counter() - started
    return {
        "batch": batch,
        "p50_ms_per_beat": percentile(times, 50),
        "p99_ms_per_beat": percentile(times, 99),
        "beats_per_s": len(calls) * batch / total,
    }


def gateway_strip_latency(
    onnx_path: Path, meta_path: Path, meta: dict[str, Any], cases: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, float]]:
    """Each case's JSON bodies (10 s strips, optionally with context) through `paramstack
    serve` (its own process) on loopback, one at a time, cases interleaved per strip."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Settings(home=Path(tmp))
        engine = make_engine(cfg.resolved_database_url)
        migrate.upgrade(engine)
        with transaction(session_factory(engine)) as s:
            artifact = EcgArtifact(onnx_path=onnx_path, meta_path=meta_path, meta=meta)
            number = register_ecg(s, artifact, cfg.resolved_artifacts_dir)
            registry.set_stage(s, "ecg-beats", number, Stage.PRODUCTION)
        engine.dispose()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "PARAMSTACK_HOME": tmp, "PARAMSTACK_RESULT_CACHE_SIZE": "0"}
        server = subprocess.Popen(
            [sys.executable, "-m", "paramstack", "serve", "--port", str(port), "--no-migrate",
             "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                bodies = {k: [json.dumps(b) for b in v] for k, v in cases.items()}
                client_ms: dict[str, list[float]] = {k: [] for k in cases}
                server_ms: dict[str, list[float]] = {k: [] for k in cases}
                for case in bodies.values():  # warm-up, not timed
                    client.post("/v1/models/ecg-beats/predict", content=case[0],
                                headers={"content-type": "application/json"})  # fmt: skip
                for i in range(min(len(v) for v in bodies.values())):
                    for k, case in bodies.items():
                        t0 = time.perf_counter()
                        r = client.post("/v1/models/ecg-beats/predict", content=case[i],
                                        headers={"content-type": "application/json"})  # fmt: skip
                        client_ms[k].append((time.perf_counter() - t0) * 1000)
                        r.raise_for_status()
                        server_ms[k].append(r.json()["performance"]["total_ms"])
        finally:
            server.terminate()
            server.wait(30)
    return {
        k: {
            "p50_client_ms": statistics.median(client_ms[k]),
            "p99_client_ms": percentile(client_ms[k], 99),
            "p50_server_total_ms": statistics.median(server_ms[k]),
            "strips": len(client_ms[k]),
        }
        for k in cases
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/ecg/default.yaml"))
    parser.add_argument("--model-dir", type=Path, help="default: the config's output dir")
    parser.add_argument("--beats", type=int, default=2000)
    parser.add_argument("--strips", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("bench/results/ecg.json"))
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--no-gateway", action="store_true", help="skip the gateway phase")
    parser.add_argument(
        "--context", type=float, default=0.0, help="also time strips with S s of context"
    )
    args = parser.parse_args()

    args.model_dir = args.model_dir or resolve_paths(load_config(args.config))[0]
    model, config, _ = load_trained(args.model_dir)
    onnx_path = args.model_dir / "model.onnx"
    meta_path = args.model_dir / "onnx-meta.json"
    if not onnx_path.is_file() or not meta_path.is_file():
        export_ecg_onnx(args.model_dir)
    meta = json.loads(meta_path.read_text())
    db = Path(config.db)
    home = Settings().home
    data = load_beats(
        db,
        split_records(db, "ds2")[:4],
        config.model_fs,
        BeatWindow(config.before, config.after),
        cache_dir=home / "cache" / "ecg",
    )
    pick = np.random.default_rng(0).choice(
        len(data), size=min(args.beats, len(data)), replace=False
    )
    packed = pack_inputs(data.beats[pick], data.rr[pick][:, : len(meta["rr_features"])])

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    torch.set_num_threads(1)
    wrapped = PackedInput(model).eval()

    def run_ort(x: np.ndarray) -> object:
        return session.run(None, {name: x})[0]

    def run_torch(x: np.ndarray) -> object:
        with torch.inference_mode():
            return wrapped(torch.from_numpy(x)).numpy()

    results: dict[str, object] = {
        "model_dir": str(args.model_dir),
        "arch": config.arch,
        "beats": len(packed),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    rows: list[dict[str, Any]] = []
    for batch in (1, 12, 256):
        onnx_row, torch_row = per_beat(run_ort, packed, batch), per_beat(run_torch, packed, batch)
        ratio = onnx_row["beats_per_s"] / torch_row["beats_per_s"]
        rows.append({"batch": batch, "onnx": onnx_row, "torch": torch_row, "speedup": ratio})
        print(
            f"batch {batch:>3}: onnxruntime p50 {onnx_row['p50_ms_per_beat']:.3f} ms/beat "
            f"p99 {onnx_row['p99_ms_per_beat']:.3f}, {onnx_row['beats_per_s']:,.0f} beats/s | "
            f"torch p50 {torch_row['p50_ms_per_beat']:.3f} p99 {torch_row['p99_ms_per_beat']:.3f}, "
            f"{torch_row['beats_per_s']:,.0f} beats/s | ONNX/torch {ratio:.2f}x"
        )
    results["latency"] = rows

    runner = onnx_runner(session)
    record = read_record(db, "119")
    n, lead = int(record.fs * 10), int(record.fs * args.context)
    cases: dict[str, list[dict[str, Any]]] = {"strip_10s": []}
    if args.context:
        cases[f"strip_10s_context_{args.context:g}s"] = []
    for k in range(args.strips):  # with --context the strips start after S s of context
        start = lead + k * n
        strip = record.signal[start : start + n].tolist()
        cases["strip_10s"].append({"signal": strip, "fs": record.fs})
        if args.context:
            context = record.signal[start - lead : start].tolist()
            cases[f"strip_10s_context_{args.context:g}s"].append(
                {"signal": strip, "fs": record.fs, "context": context}
            )
    p50: dict[str, float] = {}
    for key, bodies in cases.items():
        strip_times, model_times = [], []
        for body in bodies:
            out = analyze_strip(runner, body["signal"], record.fs, context=body.get("context"),
                                **strip_options(meta))  # fmt: skip
            strip_times.append(out["timings_ms"]["total"])
            model_times.append(out["timings_ms"]["model"])
        strip_times, model_times = strip_times[1:], model_times[1:]  # first: imports neurokit2
        p50[key] = statistics.median(strip_times)
        results[key] = {
            "p50_total_ms": p50[key],
            "p99_total_ms": percentile(strip_times, 99),
            "p50_model_ms": statistics.median(model_times),
            "strips": len(strip_times),
        }
        print(
            f"analyze_strip, {key} (119): total p50 {statistics.median(strip_times):.1f} ms "
            f"p99 {percentile(strip_times, 99):.1f} ms, model call p50 "
            f"{statistics.median(model_times):.2f} ms"
        )

    if not args.no_gateway:
        gateway = gateway_strip_latency(onnx_path, meta_path, meta, cases)
        for key, row in gateway.items():
            results[f"gateway_{key}"] = row
            print(
                f"gateway, {key} as JSON: client p50 {row['p50_client_ms']:.1f} ms "
                f"p99 {row['p99_client_ms']:.1f} ms (server total p50 "
                f"{row['p50_server_total_ms']:.1f} ms)"
            )
    if args.context:
        key = f"strip_10s_context_{args.context:g}s"
        ratio = p50[key] / p50["strip_10s"]
        results["context_over_plain_p50"] = ratio
        print(f"analyze_strip p50 with {args.context:g} s context / without: {ratio:.2f}x")

    batch1 = rows[0]
    targets = {
        "onnx_at_least_2x_torch_batch1": batch1["speedup"] >= 2.0,
        "onnx_p99_per_beat_under_1ms_batch1": batch1["onnx"]["p99_ms_per_beat"] < 1.0,
    }
    results["targets"] = targets
    for key, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'}  {key}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if args.strict and not all(targets.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
