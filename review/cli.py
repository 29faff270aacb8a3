"""`python -m review`: the review page over the stack's review bucket or a folder that mirrors one.

Parses arguments and displays; the page, the API and the queue are review.app / review.queue.
"""

from __future__ import annotations

import click

from common import settings
from common.aws import aws_options
from common.cli import err, run_cli
from common.errors import InputError


def parse_classes(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"--classes {value!r}: give distinct class names, comma-separated")
    return names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Label the images the model was unsure of (the workflow's review/ records).

    \b
    python -m review serve --source out/workflow/bucket      # what `python -m workflow run` left on disk
    python -m review serve --source s3://<the stack's DataBucketName>
    """


@cli.command("serve")
@click.option("--source", required=True,
              help="s3://bucket (the stack's review bucket) or a folder that mirrors one (review/*.json, the "
                   "images under their keys; labels/ is written there).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True, help="0: any free port.")
@click.option("--classes", default=lambda: ",".join(settings.class_names()),
              show_default="the template's ClassNames", help="Class names in the model's order (the label index).")
@aws_options
def serve_command(source: str, host: str, port: int, classes: str, region: str | None, profile: str | None) -> None:
    """Serve the review page and its JSON API until Ctrl-C. Labels go to SOURCE's labels/ as Ground Truth lines."""
    from common.artefacts import is_s3_uri
    from review.server import serve

    session = None
    if is_s3_uri(source):
        from common.aws import session as aws_session

        session = aws_session(region, profile)
    serve(source, parse_classes(classes), host=host, port=port, session=session, announce=err.print)


def main() -> None:
    run_cli(cli, "python -m review")
