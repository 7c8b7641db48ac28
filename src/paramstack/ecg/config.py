"""The ECG training job's configuration: a dataclass, YAML files in ``configs/ecg/`` and
``key=value`` overrides from the command line (torchtune style). The resolved config is
printed at the start of a run and stored beside the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paramstack.errors import InvalidInput

CLASS_WEIGHTINGS = ("none", "inverse", "inverse_sqrt")
BIAS_OBJECTIVES = ("f1", "s_f2", "dechazal")
FEATURE_MODEL_INPUTS = ("rr", "rr+p", "rr+morphology")  # RR, + P-wave features, + all
SCALAR_INPUTS = ("record", "strip")  # whole-record inputs, or each beat's 10 s strip's


@dataclass
class EcgTrainConfig:
    """Every knob of ``paramstack ecg train`` with its default."""

    db: str = "../shared/data/mitdb"  # any local WFDB directory with beat annotations
    train_split: str = "ds1"  # ds1 | ds2 | all
    # Option, never the headline: train on a random 80 % of the beats of every record and
    # test (`ecg evaluate --split intra`) on the other 20 %. Same patients on both sides, so
    # its figures are inflated (see records.INTRA_PATIENT_LABEL).
    intra_patient: bool = False
    intra_test_fraction: float = 0.2
    eval_split: str = "ds2"
    records: list[str] | None = None  # explicit training records (tests, quick runs)
    max_beats_per_record: int | None = None  # cap for reduced-size runs (first beats kept)
    model_fs: float = 180.0  # Hz; every input is resampled to this rate
    before: int = 64  # samples before the R peak at model_fs (0.36 s: P wave, previous T)
    after: int = 80  # samples after it (0.44 s: QRS and T wave)
    labels: str = "aami"  # aami (N/S/V/F/Q) | symbols (MIT-BIH beat symbols, fine-grained)
    arch: str = "resnet1d"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-3  # one-cycle peak
    weight_decay: float = 1e-4
    class_weighting: str = "inverse_sqrt"  # loss weights from class frequencies
    # Per-epoch cap on beats of one class (a fresh random subset each epoch): undersamples N,
    # which is both faster and a second lever against imbalance. None keeps every beat.
    max_beats_per_class: int | None = 12000
    # Training-time augmentation: shifts of up to ±3 samples (R-peak jitter of detectors),
    # Gaussian noise, and dropping the raw-beat channel for some beats so the model also
    # learns to judge a beat by its deviation from the patient's template and its RR.
    augment: bool = False
    drop_beat_channel: float = 0.3
    # k > 1: train the ensemble's k members on the training records minus one fold of
    # records each (patient-wise), and set the decision bias for S/V/F from the members'
    # out-of-fold logits (ecg.calibrate). Needs arch ensemble with k members.
    cv_folds: int = 0
    # > 0: an ensemble adds this times the log-odds of a logistic regression on the RR and
    # morphology features (ecg.feature_model), fitted per fold for the out-of-fold bias.
    feature_model_weight: float = 0.0
    feature_model_inputs: str = "rr"  # rr (nine RR features) | rr+p (+ P wave) | rr+morphology
    # Drop the feature model for beats the AF detector (ecg.rhythm, 10-beat windows, fitted on
    # the training records; record-wise refits for the out-of-fold logits) calls AF.
    feature_model_af_gate: bool = False
    # The feature model's F log-odds set to its N log-odds (it adds S and V evidence only):
    # on served strips its F column called N beats F (docs/ecg.md, session 6, ECG round 3).
    feature_model_f_neutral: bool = False
    # What the S/V/F bias maximises on the out-of-fold logits: f1 = mean of S F1 and V F1;
    # s_f2 = mean of S F2 and V F1 (a missed SVEB weighs more than a false S alarm);
    # dechazal = the smallest margin over de Chazal 2004's four S/V figures, +P at DS2's
    # published class mix (ecg.calibrate.choose_bias_dechazal).
    bias_objective: str = "f1"
    # The highest F logit bias the search may pick (None: up to the grid's +4). F is in no
    # objective, so an S-F2 bias raised it as a dump for would-be S/V false alarms (session 7,
    # ECG round 4: 3,067 DS1 N beats called F out of fold at F +3).
    bias_f_max: float | None = None
    # Where the per-beat scalar inputs (RR, morphology, AF columns) come from for the
    # out-of-fold logits, the feature model's fit and evaluation: "record" (the whole record,
    # as the CNN members train on) or "strip" (the 10 s strip around each beat, as a served
    # strip computes them: ecg.strip_inputs; session 7, ECG round 4).
    scalar_inputs: str = "record"
    # With scalar_inputs "strip": the CNN members train on the strip-like inputs too (they
    # are retrained), so no part of the model reads inputs it was not fitted on.
    strip_members: bool = False
    seed: int = 0
    num_threads: int = 2
    out_dir: str | None = None  # default <home>/build/ecg-<arch>
    mlflow: bool = True
    mlflow_uri: str | None = None  # default sqlite:///<home>/mlflow.db
    experiment: str = "ecg-beats"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.num_threads < 1:
            raise InvalidInput("epochs, batch_size, lr and num_threads must be positive")
        if self.model_fs <= 0 or self.before < 1 or self.after < 1:
            raise InvalidInput("model_fs, before and after must be positive")
        if self.labels not in ("aami", "symbols"):
            raise InvalidInput(f"labels {self.labels!r}; valid: aami, symbols", param="labels")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise InvalidInput(
                f"class_weighting {self.class_weighting!r}; valid: {', '.join(CLASS_WEIGHTINGS)}"
            )
        if self.feature_model_weight < 0 or (self.feature_model_weight and self.arch != "ensemble"):
            raise InvalidInput(
                "feature_model_weight must be >= 0 and needs arch ensemble",
                param="feature_model_weight",
            )
        if self.feature_model_inputs not in FEATURE_MODEL_INPUTS:
            raise InvalidInput(
                f"feature_model_inputs {self.feature_model_inputs!r}; valid: "
                + ", ".join(FEATURE_MODEL_INPUTS),
                param="feature_model_inputs",
            )
        if self.feature_model_af_gate and not self.feature_model_weight:
            raise InvalidInput(
                "feature_model_af_gate gates the feature model: set feature_model_weight",
                param="feature_model_af_gate",
            )
        if self.bias_objective not in BIAS_OBJECTIVES:
            raise InvalidInput(
                f"bias_objective {self.bias_objective!r}; valid: {', '.join(BIAS_OBJECTIVES)}",
                param="bias_objective",
            )
        if self.scalar_inputs not in SCALAR_INPUTS:
            raise InvalidInput(
                f"scalar_inputs {self.scalar_inputs!r}; valid: {', '.join(SCALAR_INPUTS)}",
                param="scalar_inputs",
            )
        if self.strip_members and self.scalar_inputs != "strip":
            raise InvalidInput("strip_members needs scalar_inputs strip", param="strip_members")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise InvalidInput("cv_folds must be 0 (off) or at least 2", param="cv_folds")
        if self.cv_folds and (
            self.arch != "ensemble"
            or len(self.arch_kwargs.get("members", ())) != self.cv_folds
            or self.labels != "aami"
        ):
            raise InvalidInput(
                "cv_folds needs arch ensemble with one member per fold and labels aami",
                param="cv_folds",
            )
        if self.records is not None:
            self.records = [str(r) for r in self.records]


def load_config(path: Path | None = None, overrides: list[str] | None = None) -> EcgTrainConfig:
    """Defaults, then the YAML file, then ``key=value`` overrides (values parsed as YAML)."""
    from paramstack.train.config import load_config as load_recipe

    return load_recipe(EcgTrainConfig, path, overrides)
