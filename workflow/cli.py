"""`python -m workflow`: run the state machine offline, and operate it on AWS."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console

from workflow.images import demo_images
from workflow.offline import OfflineRuntime
from workflow.report import history_table, print_result
from workflow.servers import BackgroundServer
from workflow.stub_endpoint import Answer, ScriptedEndpoint

console = Console()


def quiet_moto() -> None:
    """moto logs every failed state at WARNING with its whole parse tree; the history says it better."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)


@click.group()
def cli() -> None:
    """Scones Unlimited image-classification workflow."""


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("out/demo"), show_default=True,
              help="Where the Lambda logs go.")
def demo(out_dir: Path) -> None:
    """Run the real ASL and handlers offline against a scripted stand-in endpoint: one confident image
    (SUCCEEDED) and one the stand-in is unsure of (FAILED with LowConfidenceError, recorded for review)."""
    quiet_moto()
    endpoint = ScriptedEndpoint(default=Answer.probabilities(0.62, 0.38))
    endpoint.enqueue([Answer.probabilities(0.97, 0.03)])
    with BackgroundServer(endpoint.app(), name="scripted-endpoint") as server, \
            OfflineRuntime(server.url, lambda_log_dir=out_dir / "lambda-logs") as runtime:
        console.print(f"stand-in endpoint {server.url}, Lambda API {runtime.lambda_url}, "
                      f"state machine {runtime.state_machine_arn}")
        for key, data in demo_images():
            runtime.put_image(key, data)
            result = runtime.run(key)
            console.print(history_table(runtime.history(result.execution_arn), title=result.execution_arn))
            print_result(console, result)
        for key, record in runtime.review_records().items():
            console.print(f"review record s3://{runtime.bucket}/{key}: {record['s3_key']} "
                          f"{record['inferences']} - {record['error']['errorMessage']}")
    console.print(f"Lambda logs: {out_dir / 'lambda-logs'}")
