"""``paramstack ecg``: train, evaluate and export the arrhythmia beat classifier; NEWS2 / MEWS.

Heavy imports (torch, mlflow, neurokit2) happen inside the commands, so ``paramstack --help``
stays fast and the score commands run without the training stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from paramstack.cli.context import console, print_json, registry_session, settings
from paramstack.errors import InvalidInput

app = typer.Typer(help="ECG arrhythmia pipeline and early-warning scores.", no_args_is_help=True)
DEFAULT_CONFIG = Path("configs/ecg/default.yaml")

ConfigOption = Annotated[Path, typer.Option("--config", help="YAML config (configs/ecg/).")]
Overrides = Annotated[list[str] | None, typer.Argument(help="key=value config overrides.")]


def _model_dir(config_path: Path, overrides: list[str] | None) -> Path:
    from paramstack.ecg.config import load_config
    from paramstack.ecg.train import resolve_paths

    return resolve_paths(load_config(config_path, overrides), settings())[0]


@app.command()
def train(config: ConfigOption = DEFAULT_CONFIG, overrides: Overrides = None) -> None:
    """Train a beat classifier (resumes from the checkpoint of an identical config)."""
    import dataclasses

    from paramstack.ecg.config import load_config
    from paramstack.ecg.train import train_ecg

    cfg = load_config(config, overrides)
    console.print("[bold]resolved config[/]")
    print_json(dataclasses.asdict(cfg))
    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total} (all folds)"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=cfg.epochs, loss=float("nan"))
        trained = train_ecg(
            cfg,
            progress=lambda step, total, loss: bar.update(
                task, completed=step, total=total, loss=loss
            ),
            settings=settings(),
        )
    console.print(
        f"trained {cfg.arch} in {trained.train_seconds:.0f} s; final loss "
        f"{trained.epoch_losses[-1]:.4f}; model in {trained.out_dir}"
        + (f"; MLflow run {trained.run_id}" if trained.run_id else "")
    )


@app.command()
def download(
    database: Annotated[str, typer.Argument(help="PhysioNet database slug.")] = "mitdb",
    out: Annotated[
        Path | None, typer.Option(help="Target directory [<home>/data/<database>].")
    ] = None,
    records: Annotated[str | None, typer.Option(help="Comma-separated records [all].")] = None,
    base_url: Annotated[str, typer.Option(help="PhysioNet or a mirror.")] = "https://physionet.org",
) -> None:
    """Download a WFDB database from PhysioNet (resumes: files already there are kept)."""
    from paramstack.ecg.physionet import download_database

    target = out or settings().home / "data" / database
    names = [r.strip() for r in records.split(",") if r.strip()] if records else None
    with Progress(
        TextColumn("[bold]download"),
        BarColumn(),
        TextColumn("record {task.completed}/{task.total} {task.fields[record]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("download", total=len(names) if names else None, record="")
        fetched = download_database(
            target,
            database,
            records=names,
            base_url=base_url,
            progress=lambda done, total, name: bar.update(
                task, completed=done, total=total, record=name
            ),
        )
    console.print(f"{len(fetched)} records of {database} in {target}", highlight=False)


@app.command()
def evaluate(
    config: ConfigOption = DEFAULT_CONFIG,
    db: Annotated[Path | None, typer.Option(help="WFDB directory (default: config db).")] = None,
    split: Annotated[
        str, typer.Option(help="ds2 | ds1 | all (any WFDB db) | intra (labelled).")
    ] = "ds2",
    model_dir: Annotated[Path | None, typer.Option(help="Training output directory.")] = None,
    records: Annotated[str | None, typer.Option(help="Comma-separated records instead.")] = None,
    report_dir: Annotated[Path | None, typer.Option(help="Where the report goes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the headline as JSON.")] = False,
    inputs: Annotated[
        str,
        typer.Option(
            help="Per-beat scalar inputs, comma-separated, side by side: record (whole "
            "record) | strip (as a served 10 s strip computes them) | context:N (each strip "
            "served with the N s before it) | served / served:N (the served path on 10 s "
            "strips with its own R-peak detector, scored EC57 bxb) | both (= record,strip)."
        ),
    ] = "both",
    overrides: Overrides = None,
) -> None:
    """EC57 report (JSON, Markdown, PNG) on DS2 or any annotated WFDB database."""
    from paramstack.ecg.evaluate import evaluate_model

    folder = model_dir or _model_dir(config, overrides)
    names = [r.strip() for r in records.split(",") if r.strip()] if records else None
    report = evaluate_model(
        folder,
        db=db,
        split=split,
        records=names,
        report_dir=report_dir,
        settings=settings(),
        inputs=inputs,
    )
    keys = ("served_strip", "served_context", "served_bxb")
    named = [("headline", report), *((k, report[k]) for k in keys if k in report)]
    if as_json:
        print_json(
            {
                "beats": report["gross"]["beats"],
                **{
                    key: {
                        "inputs": part["scalar_inputs"],
                        **part["headline"],
                        "beats_de_chazal_2004": part["beats_de_chazal_2004"],
                        "de_chazal_2004_beaten": part["de_chazal_2004_beaten"],
                        **({"detector": part["gross"]["detector"]} if "bxb" in part else {}),
                    }
                    for key, part in named
                },
                "beats_de_chazal_2004": report["beats_de_chazal_2004"],
            }
        )
        return
    lines = [
        f"{report['split']}: {report['gross']['beats']} beats (de Chazal 2004: S 76/38, V 77/82)"
    ]
    for _, part in named:
        fig = part["headline"]
        lines.append(
            f"  {part['inputs_label']}: accuracy {fig['accuracy']} %, S Se {fig['S_se']} / "
            f"+P {fig['S_ppv']}, V Se {fig['V_se']} / +P {fig['V_ppv']}; beats de Chazal on "
            f"{', '.join(part['de_chazal_2004_beaten']) or 'none'}"
        )
    lines.append(f"report in {report_dir or Path(folder) / ('report-' + report['split'])}")
    console.print("\n".join(lines), highlight=False)


@app.command()
def export(
    config: ConfigOption = DEFAULT_CONFIG,
    model_dir: Annotated[Path | None, typer.Option(help="Training output directory.")] = None,
    name: Annotated[str, typer.Option(help="Registry model name.")] = "ecg-beats",
    records: Annotated[
        str | None, typer.Option(help="Comma-separated parity records (default: DS2).")
    ] = None,
    register: Annotated[bool, typer.Option(help="Register the ONNX file.")] = True,
    overrides: Overrides = None,
) -> None:
    """Export to ONNX with a parity check on DS2 beats, then register it with its lineage."""
    from paramstack.ecg.export import export_ecg_onnx, register_ecg
    from paramstack.store import migrate

    cfg = settings()
    names = [r.strip() for r in records.split(",") if r.strip()] if records else None
    folder = model_dir or _model_dir(config, overrides)
    artifact = export_ecg_onnx(folder, parity_records=names, settings=cfg)
    parity = artifact.meta["metrics"]["parity_max_abs_diff"]
    beats = artifact.meta["metrics"]["parity_beats"]
    console.print(f"wrote {artifact.onnx_path} (parity max |Δ| {parity:.2e} on {beats} beats)")
    if not register:
        return
    migrate.upgrade_url(cfg.resolved_database_url)
    with registry_session(cfg) as session:
        version = register_ecg(session, artifact, cfg.resolved_artifacts_dir, name=name)
    console.print(f"registered {name} v{version}")


@app.command()
def rhythm(
    db: Annotated[Path | None, typer.Option(help="WFDB directory [config db].")] = None,
    train_records: Annotated[
        str, typer.Option(help="ds1 | comma-separated records to train the AF detector on.")
    ] = "ds1",
    test_records: Annotated[
        str, typer.Option(help="ds2 | comma-separated records to score AF episodes on.")
    ] = "ds2",
    vf_records: Annotated[
        str, typer.Option(help="all | comma-separated records to score VF episodes on.")
    ] = "all",
    window_beats: Annotated[int, typer.Option(min=8, help="RR window of the AF features.")] = 32,
    out: Annotated[Path | None, typer.Option(help="Report folder [<home>/build/rhythm].")] = None,
) -> None:
    """AF/flutter and VF/flutter episodes against the rhythm annotations (aux_note): trains
    the AF detector, scores episode Se/+P (count and duration), writes JSON + Markdown."""
    from paramstack.ecg.config import load_config
    from paramstack.ecg.records import SplitName, split_records
    from paramstack.ecg.rhythm_eval import (
        evaluate_rhythm,
        load_rhythm_record,
        train_af_detector,
        write_rhythm_report,
    )

    folder = Path(db or load_config(DEFAULT_CONFIG).db)

    def names(spec: str) -> list[str]:
        if spec in ("ds1", "ds2", "all"):
            return split_records(folder, cast(SplitName, spec))
        return [r.strip() for r in spec.split(",") if r.strip()]

    train_names, test_names, vf_names = names(train_records), names(test_records), names(vf_records)
    overlap = sorted(set(train_names) & set(test_names))
    if overlap:
        raise InvalidInput(f"records in both training and test: {', '.join(overlap)}")
    with console.status("reading records"):
        loaded = {n: load_rhythm_record(folder, n) for n in {*train_names, *test_names, *vf_names}}
    detector = train_af_detector([loaded[n] for n in train_names], window_beats)
    with console.status("scoring episodes"):
        report = evaluate_rhythm(
            detector, [loaded[n] for n in test_names], [loaded[n] for n in vf_names]
        )
    report["train_records"] = ", ".join(train_names)
    target = out or settings().home / "build" / "rhythm"
    path = write_rhythm_report(report, target)
    af, vf = report["af"]["gross"], report["vf"]["gross"]
    console.print(
        f"AF episodes Se {af['episode_se']} / +P {af['episode_ppv']}, duration Se "
        f"{af['duration_se']} / +P {af['duration_ppv']}; VF episodes Se {vf['episode_se']} / "
        f"+P {vf['episode_ppv']} → {path}",
        highlight=False,
    )


def _observations(series: Path | None, values: dict[str, Any]) -> list[dict[str, Any]] | None:
    if series is None:
        return None
    try:
        data = json.loads(series.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read observations from {series}: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(o, dict) for o in data):
        raise InvalidInput(f"{series} must hold a JSON list of observation objects")
    return data


RespOpt = Annotated[float | None, typer.Option("--resp", help="Respiration rate /min.")]
SbpOpt = Annotated[float | None, typer.Option("--sbp", help="Systolic BP mmHg.")]
PulseOpt = Annotated[float | None, typer.Option("--pulse", help="Pulse / heart rate bpm.")]
TempOpt = Annotated[float | None, typer.Option("--temp", help="Temperature °C.")]
ConsciousOpt = Annotated[
    str | None, typer.Option("--consciousness", help="alert|confusion|voice|pain|unresponsive")
]
SeriesOpt = Annotated[
    Path | None, typer.Option("--series", help="JSON list of observations with 'time' (h).")
]


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def news2(
    resp: RespOpt = None,
    spo2: Annotated[float | None, typer.Option(help="SpO2 %.")] = None,
    oxygen: Annotated[bool, typer.Option("--oxygen/--air", help="Supplemental O2.")] = False,
    scale: Annotated[int, typer.Option(help="SpO2 scale 1, or 2 (hypercapnic).")] = 1,
    sbp: SbpOpt = None,
    pulse: PulseOpt = None,
    consciousness: ConsciousOpt = None,
    temp: TempOpt = None,
    series: SeriesOpt = None,
) -> None:
    """NEWS2 (RCP 2017) for one observation set, or the trend over --series."""
    from paramstack.ecg.scores import news2 as score_news2
    from paramstack.ecg.scores import score_trend

    values = {
        "respiration_rate": resp,
        "spo2": spo2,
        "on_oxygen": oxygen,
        "spo2_scale": scale,
        "systolic_bp": sbp,
        "pulse": pulse,
        "consciousness": consciousness,
        "temperature": temp,
    }
    observations = _observations(series, values)
    if observations is not None:
        print_json(score_trend(observations, "news2"))
    else:
        print_json(score_news2(_drop_none(values)).as_dict())


@app.command()
def mews(
    sbp: SbpOpt = None,
    pulse: PulseOpt = None,
    resp: RespOpt = None,
    temp: TempOpt = None,
    consciousness: ConsciousOpt = None,
    series: SeriesOpt = None,
) -> None:
    """MEWS (Subbe et al. 2001) for one observation set, or the trend over --series."""
    from paramstack.ecg.scores import mews as score_mews
    from paramstack.ecg.scores import score_trend

    values = {
        "systolic_bp": sbp,
        "pulse": pulse,
        "respiration_rate": resp,
        "temperature": temp,
        "consciousness": consciousness,
    }
    observations = _observations(series, values)
    if observations is not None:
        print_json(score_trend(observations, "mews"))
    else:
        print_json(score_mews(_drop_none(values)).as_dict())
