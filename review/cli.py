"""`.venv/bin/python -m review`: the review page over the stack's review bucket or a folder that mirrors one.

Parses arguments and displays; the page, the API and the queue are review.app / review.queue.
"""

from __future__ import annotations

import click

from common import settings
from common.aws import aws_options
from common.cli import err, group_options, run_cli
from common.errors import InputError


def parse_classes(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"--classes {value!r}: give distinct class names, comma-separated")
    return names


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
def cli() -> None:
    """Label the images the model was unsure of (the workflow's review/ records); also installed as scones-review.

    \b
    Typical use:
      .venv/bin/python -m review serve          # out/bucket: what `.venv/bin/python -m workflow run` left on disk
      .venv/bin/python -m review serve --source s3://<the stack's DataBucketName> --region eu-west-1

    Exit status: 0 done, 1 a check failed, 2 bad usage or input, 3 AWS or the environment, 4 a bug.
    """


@cli.command("serve")
@click.option("--source", default=str(settings.DEFAULT_LAYOUT.bucket), show_default=True,
              help="s3://bucket (the stack's review bucket) or a folder that mirrors one (review/*.json, the "
                   "images under their keys; labels/ is written there): `workflow run` leaves one in out/bucket.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Off loopback (0.0.0.0, a LAN address) --token is required.")
@click.option("--port", type=click.IntRange(0, 65535), default=8090, show_default=True,
              help="0: any free port. The port is no secret: the Host, Origin and Content-Type checks (and the "
                   "token) are what refuse other pages.")
@click.option("--token", is_flag=True,
              help="Require a secret made at start: printed in the page's URL (?token=...), kept in an HttpOnly "
                   "cookie after the first visit; scripts send Authorization: Bearer <token>. Required off loopback.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests whose Host is NAME (repeat); loopback names always work. With --token, "
                   "NAME on any port and its https origin (a reverse proxy) work too, and so does any IP address. "
                   "Every other Host gets 403 (no DNS rebinding).")
@click.option("--reviewer", help="Who the labels are recorded as. Default: the AWS principal (STS ARN) for an "
                                 "s3:// source, else the OS user.")
@click.option("--classes", default=lambda: ",".join(settings.class_names()),
              show_default="the template's ClassNames", help="Class names in the model's order (the label index).")
@aws_options
def serve_command(source: str, host: str, port: int, token: bool, allowed_hosts: tuple[str, ...], reviewer: str | None,
                  classes: str, region: str | None, profile: str | None) -> None:
    """Serve the review page and its JSON API until Ctrl-C. Labels go to SOURCE's labels/ as Ground Truth lines.

    \b
    Examples:
      .venv/bin/python -m review serve                    # out/bucket on http://127.0.0.1:8090/
      .venv/bin/python -m review serve --source s3://my-data-bucket --profile reviewers --port 0
      .venv/bin/python -m review serve --host 0.0.0.0 --token --allowed-host reviews.internal --reviewer ann
    """
    from common.artefacts import is_s3_uri
    from review.server import serve

    session = None
    if is_s3_uri(source):
        from common.aws import session as aws_session

        session = aws_session(region, profile)
    serve(source, parse_classes(classes), host=host, port=port, session=session, token=token,
          allowed_hosts=allowed_hosts, reviewer=reviewer, announce=err.print)


def main() -> None:
    run_cli(cli, "python -m review")
