"""summarize-batch: turn a batch's Distributed Map results into one summary object.

The batch state machine's Map writes its child executions' results to S3 (ResultWriter): a
manifest.json naming SUCCEEDED_n.json / FAILED_n.json / PENDING_n.json files, each a JSON array of
executions with their Input and Output (or Error). Every item's own workflow catches its outcome, so a
SUCCEEDED entry's Output is {"key", "outcome": "classified" | "review" | "failed", ...}; a FAILED entry
is an item whose child workflow itself broke (counted as failed with its error name), a PENDING one an
item never started. This function reads them all and writes the summary: the counts and keys of the
classified, sent-to-review and failed objects, each object in exactly one of them, and beside it results.csv
(key,label,confidence,outcome,error): one row per object, which file got which label.

When the Map itself failed (too many items failed outside their workflow), the summary is written from
whatever results exist, every listed object without a result is counted as failed (NotStarted), and
`complete` is false.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any, NamedTuple

import boto3
from aws_lambda_powertools import Logger

s3 = boto3.client("s3")
logger = Logger()

NOT_STARTED = "NotStarted"
RESULTS_FILE = "results.csv"  # beside the summary: one row per object
RESULT_FILE_STATUSES = ("FAILED", "PENDING", "SUCCEEDED")  # later statuses win for a key seen twice (a redrive)


class InvalidEventError(Exception):
    """The event lacks the bucket, prefix, summary key, or the results' location."""


def _json(value: Any) -> Any:
    """ResultWriter stores Input and Output as JSON strings; accept them parsed too."""
    return json.loads(value) if isinstance(value, str) else value


def read_json(s3_client: Any, bucket: str, key: str) -> Any:
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def list_keys(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def result_files(s3_client: Any, bucket: str, manifest_key: str | None,
                 results_prefix: str | None) -> dict[str, list[str]]:
    """{status: [result file keys]} from the manifest, or (no manifest) from the files under results_prefix."""
    if manifest_key is None and results_prefix is not None:
        listed = list_keys(s3_client, bucket, results_prefix)
        manifest_key = next((k for k in listed if k.endswith("/manifest.json")), None)
        if manifest_key is None:
            files: dict[str, list[str]] = {}
            for key in listed:
                status = key.rsplit("/", 1)[-1].split("_", 1)[0]
                if key.endswith(".json") and status in RESULT_FILE_STATUSES:
                    files.setdefault(status, []).append(key)
            return files
    if manifest_key is None:
        raise InvalidEventError("the event gives neither results.Key (the manifest) nor results_prefix")
    manifest = read_json(s3_client, bucket, manifest_key)
    return {status: [entry["Key"] for entry in entries] for status, entries in manifest["ResultFiles"].items()}


class Outcome(NamedTuple):
    """What happened to one object: classified (with its label and confidence), review, or failed (with its error)."""

    outcome: str
    label: str | None = None
    confidence: float | None = None
    error: str | None = None


def outcome_of(status: str, entry: dict[str, Any]) -> tuple[str, Outcome]:
    """(key, outcome) of one ResultWriter entry."""
    if status == "SUCCEEDED":
        output = _json(entry["Output"])
        return output["key"], Outcome(output["outcome"], output.get("label"), output.get("confidence"),
                                      output.get("error"))
    item = _json(entry.get("Input") or "{}")
    error = NOT_STARTED if status == "PENDING" else entry.get("Error") or status
    return item.get("key", ""), Outcome("failed", error=error)


def summarize(outcomes: dict[str, Outcome], bucket: str, prefix: str, error: str | None = None) -> dict[str, Any]:
    """The summary document: each object in exactly one of classified, review, failed."""
    keys: dict[str, list[str]] = {"classified": [], "review": [], "failed": []}
    for key in sorted(outcomes):
        keys[outcomes[key].outcome].append(key)
    return {
        "bucket": bucket,
        "prefix": prefix,
        "objects": len(outcomes),
        "complete": error is None,
        "error": error,
        "classified": {"count": len(keys["classified"]), "keys": keys["classified"],
                       "labels": dict(sorted(Counter(outcomes[k].label for k in keys["classified"]).items()))},
        "review": {"count": len(keys["review"]), "keys": keys["review"]},
        "failed": {"count": len(keys["failed"]), "keys": {k: outcomes[k].error for k in keys["failed"]}},
    }


RESULTS_COLUMNS = ("key", "label", "confidence", "outcome", "error")


def results_csv(outcomes: dict[str, Outcome]) -> str:
    """One row per object, by key: which file got which label (key,label,confidence,outcome,error)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    for key in sorted(outcomes):
        found = outcomes[key]
        writer.writerow([key, found.label or "", "" if found.confidence is None else found.confidence, found.outcome,
                         found.error or ""])
    return text.getvalue()


def collect(s3_client: Any, bucket: str, files: dict[str, list[str]]) -> dict[str, Outcome]:
    """{key: outcome} over every result file."""
    outcomes: dict[str, Outcome] = {}
    for status in sorted(files, key=lambda s: RESULT_FILE_STATUSES.index(s) if s in RESULT_FILE_STATUSES else -1):
        for file_key in files[status]:
            for entry in read_json(s3_client, bucket, file_key):
                key, outcome = outcome_of(status, entry)
                outcomes[key] = outcome
    return outcomes


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        bucket, prefix, summary_key = event["bucket"], event["prefix"], event["summary_key"]
    except (KeyError, TypeError) as error:
        raise InvalidEventError(f"expected bucket, prefix and summary_key, got {event!r}") from error
    results = event.get("results") or {}
    results_bucket = results.get("Bucket") or event.get("results_bucket") or bucket
    files = result_files(s3, results_bucket, results.get("Key"), event.get("results_prefix"))
    outcomes = collect(s3, results_bucket, files)
    map_error = event.get("map_error")
    if map_error:  # the Map stopped early: every listed object without a result was never started
        for key in list_keys(s3, bucket, prefix):
            outcomes.setdefault(key, Outcome("failed", error=NOT_STARTED))
    summary = summarize(outcomes, bucket, prefix, map_error.get("Error", "States.Runtime") if map_error else None)
    results_key = f"{summary_key.rsplit('/', 1)[0]}/{RESULTS_FILE}" if "/" in summary_key else RESULTS_FILE
    s3.put_object(Bucket=results_bucket, Key=results_key, Body=results_csv(outcomes).encode(), ContentType="text/csv")
    summary["results_uri"] = f"s3://{results_bucket}/{results_key}"
    s3.put_object(Bucket=results_bucket, Key=summary_key, Body=json.dumps(summary, indent=1).encode(),
                  ContentType="application/json")
    counts = {name: summary[name]["count"] for name in ("classified", "review", "failed")}
    logger.info("batch summarized", extra={"summary_key": summary_key, **counts})
    return {"summary": f"s3://{results_bucket}/{summary_key}", "objects": summary["objects"], **counts,
            "complete": summary["complete"]}
