"""Live model quality from the data bucket: the ModelQualityLayer's join of people's labels with the decisions they
judge (modelquality.assess), read from a folder that mirrors the bucket or from s3://bucket. The CheckQualityFunction
runs the same computation on a schedule; `python -m monitoring quality` displays it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common.artefacts import is_s3_uri, parse_s3_uri
from common.errors import InputError
from common.progress import Progress
from modelquality.assess import Assessment, assess, load
from modelquality.bucket import Bucket, FolderBucket, S3Bucket
from modelquality.errors import SourceError
from modelquality.records import parse_time
from modelquality.stats import wilson_interval

__all__ = ["Assessment", "QualitySourceError", "assess_source", "open_bucket", "parse_since", "precision_over_time"]


class QualitySourceError(InputError):
    """--source is not s3://bucket nor a folder that mirrors one, or --since is not a time."""


def open_bucket(source: str, s3: Any | None = None, *, error: type[InputError] = QualitySourceError,
                folder: Callable[[Path], Bucket] = FolderBucket, bucket: Callable[[Any, str], Bucket] = S3Bucket,
                reads: str = "its review/, audit/ and labels/ prefixes are read") -> Bucket:
    """`s3://bucket` (read with the boto3 S3 client `s3`) or a folder that mirrors a bucket, opened with `bucket` or
    `folder` (the review page passes its stores, which build on these readers); a source that is neither is refused
    with `error`, saying what is read (`reads`)."""
    if is_s3_uri(source):
        location = parse_s3_uri(source)
        if location.key.strip("/"):
            raise error(f"{source}: give the bucket alone (s3://{location.bucket}); {reads}")
        if s3 is None:
            raise error("an s3:// source needs an AWS session")
        return bucket(s3, location.bucket)
    try:
        return folder(Path(source))
    except SourceError as refused:
        raise error(str(refused)) from None


def parse_since(text: str | None) -> datetime | None:
    """--since as a UTC time: ISO 8601 (a date, or a time with or without a zone; no zone means UTC)."""
    if text is None:
        return None
    moment = parse_time(text)
    if moment is None:
        raise QualitySourceError(f"--since {text!r} is not an ISO 8601 time (e.g. 2026-11-24 or 2026-11-24T10:00Z)")
    return moment


def assess_source(source: str, class_names: Sequence[str], target: float, *, since: datetime | None = None,
                  s3: Any | None = None, now: datetime | None = None,
                  progress: Progress | None = None) -> Assessment:
    """Read every decision (since `since`) and every label of `source`, and judge them against `target`."""
    bucket = open_bucket(source, s3)
    inputs = load(bucket, since=since, all_labels=True, progress=progress)
    return assess(inputs, class_names, target, now=now or datetime.now(UTC), since=since, holds=bucket.holds)


def precision_over_time(assessment: Assessment) -> list[dict[str, Any]]:
    """Live precision per day (per hour when the labelled audits span less than two days), each with its Wilson
    interval: what the report plots beside drift (the dashboard plots the scheduled check's hourly metrics)."""
    times = [moment for moment, _ in assessment.judged if moment is not None]
    if not times:
        return []
    hourly = max(times) - min(times) < timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)

    def start_of(moment: datetime) -> datetime:
        return moment.replace(minute=0, second=0, microsecond=0) if hourly else moment.replace(
            hour=0, minute=0, second=0, microsecond=0)

    bins: dict[datetime, list[bool]] = {}
    for moment, right in assessment.judged:
        if moment is not None:
            bins.setdefault(start_of(moment), []).append(right)
    series = []
    for start in sorted(bins):
        outcomes = bins[start]
        low, high = wilson_interval(sum(outcomes), len(outcomes))
        series.append({"start": start.isoformat(), "end": (start + step).isoformat(), "audited": len(outcomes),
                       "precision": round(sum(outcomes) / len(outcomes), 4),
                       "precision_interval": [round(low, 4), round(high, 4)]})
    return series
