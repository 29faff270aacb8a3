"""`python -m monitoring`: report on captured traffic, and check it for drift against the training baseline."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from common import settings
from common.artefacts import model_class_names, read_baseline
from common.cli import out, run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Monitor the endpoint from its data capture (s3://bucket/data_capture/... or a local folder)."""


@cli.command()
@click.option("--capture", required=True, help="Data capture location: s3://bucket/prefix or a folder.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=settings.DEFAULT_LAYOUT.report,
              show_default=True)
@click.option("--model-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="For class names (metadata.json).")
@click.option("--dataset", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="data_prep dataset whose manifest gives the true labels (matched by pixels).")
@click.option("--threshold", type=float, default=settings.confidence_threshold,
              show_default="the template's ConfidenceThreshold")
@click.option("--target-precision", type=float, default=0.99, show_default=True,
              help="Precision the recommended threshold must reach (with labels).")
def report(capture: str, out_dir: Path, model_dir: Path | None, dataset: Path | None, threshold: float,
           target_precision: float) -> None:
    """Write PNG plots and one self-contained HTML page about the captured inferences."""
    from monitoring.report import labels_from_dataset, write_report

    labels = labels_from_dataset(dataset) if dataset else None
    page = write_report(capture, out_dir, class_names=model_class_names(model_dir) if model_dir else None,
                        labels=labels, threshold=threshold, target_precision=target_precision)
    summary = json.loads((out_dir / "summary.json").read_text())
    out.print(f"{summary['inferences']} inferences from {summary['files']} files "
                  f"({summary['malformed_lines']} malformed lines); report: {page}")


@cli.command()
@click.option("--capture", required=True, help="Data capture location: s3://bucket/prefix or a folder.")
@click.option("--baseline", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True,
              help="baseline.json written next to the model at training time.")
@click.option("--last", type=click.IntRange(1), help="Check only the most recent N inferences.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Thresholds (default: monitoring/config/drift.json).")
def drift(capture: str, baseline: Path, last: int | None, config_path: Path | None) -> None:
    """Compare captured traffic with the baseline; exit 1 and name the features that drifted."""
    from monitoring.capture import read_capture
    from monitoring.drift import DriftConfig, check_drift

    config = DriftConfig.load(config_path) if config_path else DriftConfig.load()
    records = read_capture(capture).records
    window = records[-last:] if last else records
    checks = check_drift(read_baseline(baseline), window, config)
    if not checks:
        out.print(f"{len(window)} inferences: fewer than {config.min_samples}, no verdict")
        raise SystemExit(0)
    table = Table(title=f"drift over {len(window)} inferences")
    for column in ("feature", "PSI", "p-value", "drifted", "detail"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.feature, f"{check.psi:.3f}", f"{check.p_value:.2g}",
                      "[bold red]yes[/]" if check.drifted else "no", check.detail)
    out.print(table)
    drifted = [check.feature for check in checks if check.drifted]
    if drifted:
        out.print(f"[bold red]drift detected[/]: {', '.join(drifted)}")
        raise SystemExit(1)
    out.print("no drift")


def main() -> None:
    run_cli(cli, "python -m monitoring")
