"""``data clean`` throughput against the datasketch MinHash anchor, measured in the same run.

The anchor is what near-deduplication alone costs: a datasketch ``MinHash`` (128 permutations)
over word 5-gram shingles of each document, one process. The pipeline does that *plus*
normalisation, language identification, the Gopher/C4/FineWeb rules, PII masking, LSH
lookups and writing shards. Input: the whole bundled Turkish sample (speeches and treebank
pages, ``paramstack data sample``), optionally repeated.
Run: ``.venv/bin/python bench/data_clean.py [--repeat 1] [--workers 0]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from datasketch import MinHash

from paramstack.data.dedup import SCHEME, SEED, shingles
from paramstack.data.filters import CleanConfig
from paramstack.data.ingest import Doc
from paramstack.data.pipeline import clean
from paramstack.data.sample import build_sample
from paramstack.tokenizer.corpus import jsonl_files


def load(sample: Path, repeat: int) -> list[Doc]:
    docs = []
    for path in jsonl_files(sample):
        for n, line in enumerate(path.read_text().splitlines()):
            row = json.loads(line)
            docs.append(Doc(f"{path.stem}-{n}", row["text"], row["source"]))
    # Repeats differ by a suffix so exact dedup does not short-cut them (MinHash still runs).
    return [
        Doc(f"{d.id}-{r}", d.text + f" ({r})" * (r > 0), d.source)
        for r in range(repeat)
        for d in docs
    ]


def anchor(docs: list[Doc]) -> float:
    start = time.perf_counter()
    for doc in docs:
        mh = MinHash(num_perm=128, seed=SEED, scheme=SCHEME)
        mh.update_batch(shingles(doc.text))
    return len(docs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="0 = one per core")
    parser.add_argument("--home", type=Path, default=Path(".cache"))
    args = parser.parse_args()
    sample = args.home / "bench-sample"
    if not (sample / "sample.json").exists():
        build_sample(sample, args.home / "wheels")
    docs = load(sample, args.repeat)
    chars = sum(len(d.text) for d in docs)
    workers = args.workers or os.cpu_count() or 1
    anchor_rate = anchor(docs)
    with tempfile.TemporaryDirectory() as tmp:
        one = clean(docs, Path(tmp) / "one", CleanConfig(workers=1))
        many = clean(docs, Path(tmp) / "many", CleanConfig(workers=workers))
    result = {
        "documents": len(docs),
        "mean_chars_per_doc": round(chars / len(docs)),
        "cores": os.cpu_count(),
        "anchor_minhash_docs_per_s_1core": round(anchor_rate, 1),
        "clean_docs_per_s_1worker": one["documents_per_s"],
        f"clean_docs_per_s_{workers}workers": many["documents_per_s"],
        "ratio_1worker_vs_anchor": round(one["documents_per_s"] / anchor_rate, 3),
        f"ratio_{workers}workers_vs_anchor": round(many["documents_per_s"] / anchor_rate, 3),
        "documents_out": many["documents_out"],
    }
    for key, value in result.items():
        print(f"{key:>36}: {value}")
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_clean.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
