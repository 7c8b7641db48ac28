"""Served-strip consistency check of an exported ECG model: 10 s strips every 60 s of some
records go through ``analyze_strip`` with the ONNX graph, exactly as the gateway serves them
(detector R peaks, features from the strip alone); each detected beat within 100 ms of a
reference beat is scored against its AAMI label. On training (DS1) records this checks that
the strip path matches training, not generalisation.

    python bench/ecg_strips.py var/build/ecg-ensemble/onnx --records 106,119,208,209,223,201
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from paramstack.ecg.records import BEAT_SYMBOLS, SYMBOL_TO_AAMI, read_record
from paramstack.ecg.strip import analyze_strip, onnx_runner, strip_options

ROOT = Path(__file__).resolve().parents[1]
AAMI = ("N", "S", "V", "F", "Q")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path, help="folder with model.onnx and meta.json")
    parser.add_argument("--records", default="106,119,208,209,223,201")
    parser.add_argument("--db", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    args = parser.parse_args()
    served = args.export_dir / "onnx-meta.json"  # what the export registers and serves
    meta = json.loads((served if served.is_file() else args.export_dir / "meta.json").read_text())
    onnx = next(args.export_dir.glob("*.onnx"))
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    run, options = onnx_runner(session), strip_options(meta)
    print("| record | beats scored | accuracy % | S found / S | V found / V | S called, not S |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.records.split(","):
        record = read_record(args.db, name)
        is_beat = np.array([s in BEAT_SYMBOLS for s in record.beat_symbols])
        ref_t = record.beat_samples[is_beat] / record.fs
        ref_c = np.array(
            [AAMI[SYMBOL_TO_AAMI[BEAT_SYMBOLS.index(s)]] for s in record.beat_symbols
             if s in BEAT_SYMBOLS]
        )  # fmt: skip
        counts = dict.fromkeys(("n", "ok", "s", "s_ok", "v", "v_ok", "s_fp"), 0)
        for start in np.arange(0.0, len(record.signal) / record.fs - 10, 60.0):
            a = int(start * record.fs)
            strip = record.signal[a : a + int(10 * record.fs)]
            for beat in analyze_strip(run, strip, record.fs, **options)["beats"]:
                t = start + beat["time_s"]
                i = int(np.argmin(np.abs(ref_t - t)))
                if abs(ref_t[i] - t) > 0.1:
                    continue
                truth, got = ref_c[i], beat["class"]
                counts["n"] += 1
                counts["ok"] += truth == got
                counts["s"] += truth == "S"
                counts["s_ok"] += truth == got == "S"
                counts["v"] += truth == "V"
                counts["v_ok"] += truth == got == "V"
                counts["s_fp"] += got == "S" != truth
        accuracy = 100 * counts["ok"] / max(counts["n"], 1)
        print(f"| {name} | {counts['n']} | {accuracy:.1f} | {counts['s_ok']} / {counts['s']} | "
              f"{counts['v_ok']} / {counts['v']} | {counts['s_fp']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
