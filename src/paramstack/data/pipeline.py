"""``data clean``: stream documents through the filters on every core and write JSONL shards.

Workers (a process pool) normalise, identify the language, apply the quality rules, mask PII
and compute MinHash signatures; the parent deduplicates in input order (first copy wins) and
writes. Shards go to a hidden folder first and are moved into place only when the whole run
succeeded, so a failed run leaves no partial output.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from paramstack.data.dedup import Deduplicator
from paramstack.data.filters import STAGES, CleanConfig, Outcome, clean_batch
from paramstack.data.ingest import Doc
from paramstack.errors import InvalidInput

BATCH = 64


def _batches(docs: Iterable[Doc], size: int) -> Iterator[list[Doc]]:
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch


def _outcomes(docs: Iterable[Doc], cfg: CleanConfig) -> Iterator[Outcome]:
    workers = cfg.workers or os.cpu_count() or 1
    work = partial(clean_batch, cfg=cfg)
    if workers == 1:
        for batch in _batches(docs, BATCH):
            yield from work(batch)
        return
    # Python 3.11's Executor.map reads the whole input first; a bounded queue of futures keeps
    # memory flat on large corpora and results in input order.
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future[list[Outcome]]] = deque()
        for batch in _batches(docs, BATCH):
            pending.append(pool.submit(work, batch))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


class ShardWriter:
    def __init__(self, folder: Path, shard_docs: int) -> None:
        self.folder = folder
        self.shard_docs = shard_docs
        self.count = 0
        self._file: Any = None

    def write(self, doc: Doc) -> None:
        if self.count % self.shard_docs == 0:
            self.close()
            name = f"shard-{self.count // self.shard_docs:05d}.jsonl"
            self._file = (self.folder / name).open("w", encoding="utf-8")
        row = {"id": doc.id, "text": doc.text, "source": doc.source}
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def clean(
    docs: Iterable[Doc],
    out: Path,
    cfg: CleanConfig,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Clean ``docs`` into ``out/shard-*.jsonl`` and ``out/report.json``; returns the report."""
    if out.exists() and any(out.glob("shard-*.jsonl")):
        raise InvalidInput(f"{out} already holds shards; pick an empty folder", param="out")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    dedup = Deduplicator(cfg.near_dedup_threshold, cfg.num_perm)
    writer = ShardWriter(staging, cfg.shard_docs)
    dropped: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    n_in = pii_docs = pii_spans = 0
    start = time.perf_counter()
    try:
        for outcome in _outcomes(docs, cfg):
            n_in += 1
            languages[outcome.language or "-"] += 1
            stage, reason = outcome.stage, outcome.reason
            if stage is None:
                reason = dedup.check(outcome.key, outcome.hashvalues)
                stage = None if reason is None else reason.replace("_duplicate", "_dedup")
            if stage is not None:
                dropped[stage] += 1
                reasons[reason or stage] += 1
            else:
                writer.write(outcome.doc)
                pii_docs += outcome.pii_spans > 0
                pii_spans += outcome.pii_spans
            if progress is not None and n_in % BATCH == 0:
                progress(n_in)
        writer.close()
    except BaseException:
        writer.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    if n_in == 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput("the input holds no documents", param="input")
    for shard in sorted(staging.glob("shard-*.jsonl")):
        shard.replace(out / shard.name)
    staging.rmdir()
    stages, remaining = [], n_in
    for stage in STAGES:
        stages.append({"stage": stage, "in": remaining, "out": remaining - dropped[stage]})
        remaining -= dropped[stage]
    report = {
        "documents_in": n_in,
        "documents_out": writer.count,
        "stages": stages,
        "reasons": dict(reasons.most_common()),
        "languages": dict(languages.most_common(10)),
        "pii": {"documents_masked": pii_docs, "spans_masked": pii_spans},
        "shards": writer.count and (writer.count - 1) // cfg.shard_docs + 1,
        "seconds": round(seconds, 3),
        "documents_per_s": round(n_in / seconds, 1) if seconds else None,
        "workers": cfg.workers or os.cpu_count(),
        "config": asdict(cfg),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if progress is not None:
        progress(n_in)
    return report
