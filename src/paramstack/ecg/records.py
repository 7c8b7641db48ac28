"""WFDB records, AAMI EC57 beat classes and the record splits used for training and evaluation.

The default split is de Chazal et al. 2004's inter-patient DS1/DS2: no patient contributes
beats to both sides, which is what a product meets in the field. A random beat-level
(intra-patient) split is available only as a labelled option: the same patient's beats land
on both sides, so its figures are inflated and must never be reported as the headline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from paramstack.errors import InvalidInput, NotFound

AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
# ANSI/AAMI EC57 grouping of the MIT-BIH beat symbols.
AAMI_MAP: dict[str, str] = {
    **dict.fromkeys(("N", "L", "R", "e", "j"), "N"),
    **dict.fromkeys(("A", "a", "J", "S"), "S"),
    **dict.fromkeys(("V", "E"), "V"),
    "F": "F",
    **dict.fromkeys(("/", "f", "Q"), "Q"),
}
# Records with a pacemaker: EC57 and de Chazal 2004 leave them out.
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")
DS1: tuple[str, ...] = (
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
)
DS2: tuple[str, ...] = (
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
)
# The fine-grained mode classifies MIT-BIH beat symbols themselves (the spec's "15+ types").
BEAT_SYMBOLS: tuple[str, ...] = tuple(AAMI_MAP)
SYMBOL_TO_AAMI: tuple[int, ...] = tuple(AAMI_CLASSES.index(AAMI_MAP[s]) for s in BEAT_SYMBOLS)
LABEL_SCHEMES: dict[str, tuple[str, ...]] = {"aami": AAMI_CLASSES, "symbols": BEAT_SYMBOLS}
SplitName = Literal["ds1", "ds2", "all"]
INTRA_PATIENT_LABEL = "intra-patient (beat-level random split; inflated, not a headline figure)"
PREFERRED_LEADS = ("MLII", "II", "ECG", "ECG1")


@dataclass(frozen=True)
class EcgRecord:
    """One lead of a record with its beat annotations (sample indices at ``fs``)."""

    name: str
    signal: npt.NDArray[np.float64]
    fs: float
    lead: str
    beat_samples: npt.NDArray[np.int64]
    beat_symbols: list[str]
    rhythm: list[tuple[int, str]] = field(default_factory=list)  # (sample, aux_note)

    @property
    def aami_labels(self) -> list[str | None]:
        """AAMI class per annotation; None for non-beat symbols."""
        return [AAMI_MAP.get(s) for s in self.beat_symbols]


def list_records(db_dir: Path) -> list[str]:
    """Record names in a local WFDB directory (its RECORDS file, else every ``*.hea``)."""
    db_dir = Path(db_dir)
    if not db_dir.is_dir():
        raise NotFound(f"WFDB directory not found: {db_dir}", code="ecg_db_not_found")
    listing = db_dir / "RECORDS"
    if listing.is_file():
        names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    else:
        names = sorted(p.stem for p in db_dir.glob("*.hea"))
    if not names:
        raise NotFound(f"no WFDB records (*.hea) in {db_dir}", code="ecg_db_empty")
    return names


def split_records(db_dir: Path, split: SplitName = "ds2", annotator: str = "atr") -> list[str]:
    """Records of ``split`` present in ``db_dir``; paced records are always excluded.

    ``ds1``/``ds2`` are de Chazal's MIT-BIH lists; ``all`` is every annotated record (the
    choice for another hospital's database, where DS1/DS2 names mean nothing).
    """
    available = [n for n in list_records(db_dir) if (Path(db_dir) / f"{n}.{annotator}").is_file()]
    if split == "all":
        chosen = available
    elif split in ("ds1", "ds2"):
        wanted = DS1 if split == "ds1" else DS2
        chosen = [n for n in wanted if n in available]
    else:
        raise InvalidInput(f"unknown split {split!r}; valid: ds1, ds2, all", param="split")
    chosen = [n for n in chosen if n not in PACED_RECORDS]
    if not chosen:
        raise NotFound(f"no {split} records with .{annotator} annotations in {db_dir}")
    return chosen


def _pick_lead(names: list[str], lead: str | None) -> int:
    if lead is not None:
        if lead not in names:
            raise InvalidInput(f"lead {lead!r} not in record (has {', '.join(names)})")
        return names.index(lead)
    return next((names.index(p) for p in PREFERRED_LEADS if p in names), 0)


def read_record(
    db_dir: Path, name: str, *, lead: str | None = None, annotator: str = "atr"
) -> EcgRecord:
    """Read one lead (MLII when present, else the first) and its annotations, in mV."""
    import wfdb

    base = Path(db_dir) / name
    if not base.with_suffix(".hea").is_file():
        raise NotFound(f"record {name!r} not found in {db_dir}", code="ecg_record_not_found")
    rec = wfdb.rdrecord(str(base))
    names = list(rec.sig_name)
    channel = _pick_lead(names, lead)
    signal = np.nan_to_num(np.asarray(rec.p_signal[:, channel], dtype=np.float64))
    ann = wfdb.rdann(str(base), annotator)
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = list(ann.symbol)
    aux = [str(a).rstrip("\x00") for a in (ann.aux_note or [""] * len(symbols))]
    rhythm = [(int(s), a) for s, sym, a in zip(samples, symbols, aux, strict=True) if sym == "+"]
    return EcgRecord(
        name=name,
        signal=signal,
        fs=float(rec.fs),
        lead=names[channel],
        beat_samples=samples,
        beat_symbols=symbols,
        rhythm=rhythm,
    )


def intra_patient_split(
    n_beats: int, test_fraction: float = 0.2, seed: int = 0
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Random beat-level train/test indices. See INTRA_PATIENT_LABEL before using the result."""
    if not 0.0 < test_fraction < 1.0:
        raise InvalidInput("test_fraction must be between 0 and 1", param="test_fraction")
    order = np.random.default_rng(seed).permutation(n_beats)
    cut = round(n_beats * (1.0 - test_fraction))
    return np.sort(order[:cut]), np.sort(order[cut:])
