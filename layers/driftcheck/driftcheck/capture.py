"""SageMaker endpoint data capture read back: every record of every JSON Lines file, validated, in inference order.

Files sit at `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl` (S3, or a folder the local
endpoint writes); the variant of each record comes from its key. A record that is not a valid
capture of this model is counted and listed as malformed, never fatal, so monitoring does not go
blind because one file was cut short: not JSON, a missing field, an output that is not one finite
probability per class summing to 1 (NaN, Infinity and booleans included), a class count other than
the model's, an input the image preprocessing refuses. When records of another class count
outnumber the valid ones, the capture belongs to another model and the read is refused
(ClassSetMismatchError).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from driftcheck.errors import CaptureNotFoundError, ClassSetMismatchError

PROBABILITY_SUM_TOLERANCE = 1e-3  # what classify-image accepts from the endpoint
CAPTURE_SUFFIX = ".jsonl"
UNNAMED_VARIANT = ""  # a file outside the <endpoint>/<variant>/yyyy/mm/dd/hh/ layout

Decode = Callable[[bytes], np.ndarray]  # request body -> the model's input, (H, W, 3) uint8
CaptureFile = tuple[str, str, str]  # (name for messages, variant, text)


class MalformedRecordError(ValueError):
    """One capture line is not a valid record of this model's traffic."""


@dataclass(frozen=True)
class CapturedInference:
    event_id: str
    time: datetime
    variant: str
    input_type: str
    input: bytes
    probabilities: tuple[float, ...]
    source: str  # file:line, for reporting
    inference_id: str | None = None

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    @property
    def predicted(self) -> int:
        return self.probabilities.index(self.confidence)


@dataclass
class CaptureSet:
    """Valid records in time order, what was refused and why, and (once decoded) the images the model saw."""

    records: list[CapturedInference] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # "file:line: why"
    files: int = 0
    images: np.ndarray | None = None  # (N, H, W, 3) uint8, aligned with records, when read with a decoder

    @property
    def variants(self) -> list[str]:
        return sorted({record.variant for record in self.records})

    def select(self, *, since: datetime | None = None, last: int | None = None,
               variant: str | None = None) -> CaptureSet:
        """The records at or after `since`, of `variant`, then the most recent `last` of them."""
        keep = [index for index, record in enumerate(self.records)
                if (since is None or record.time >= since) and (variant is None or record.variant == variant)]
        if last is not None:
            keep = keep[-last:] if last > 0 else []
        images = self.images[keep] if self.images is not None else None
        return replace(self, records=[self.records[index] for index in keep], images=images)


def variant_from_key(key: str) -> str:
    """The production variant in `.../<variant>/yyyy/mm/dd/hh/<file>.jsonl`; UNNAMED_VARIANT otherwise."""
    parts = key.replace("\\", "/").split("/")
    if len(parts) >= 6 and all(part.isdigit() for part in parts[-5:-1]):
        return parts[-6]
    return UNNAMED_VARIANT


def _reject_constant(name: str) -> Any:
    raise MalformedRecordError(f"{name} is not a JSON number")


def _json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise MalformedRecordError(f"{what} is not JSON ({error.msg}, column {error.colno})") from None
    except UnicodeDecodeError:
        raise MalformedRecordError(f"{what} is not UTF-8 text") from None


def _object(parent: Any, key: str, path: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, dict):
        raise MalformedRecordError(f"{path} is missing or not an object")
    return value


def _text(parent: dict[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise MalformedRecordError(f"{path} is missing or not a string")
    return value


def _payload(capture: dict[str, Any], side: str) -> bytes:
    payload = _object(capture, side, f"captureData.{side}")
    data = _text(payload, "data", f"captureData.{side}.data")
    if payload.get("encoding") == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise MalformedRecordError(f"captureData.{side}.data is not valid base64") from None
    return data.encode()


def _probabilities(output: bytes) -> tuple[float, ...]:
    values = _json(output, "the endpoint's output")
    if not isinstance(values, list) or not values:
        raise MalformedRecordError(f"output is not a probability list: {str(values)[:60]}")
    if not all(type(value) in (int, float) and math.isfinite(value) for value in values):
        raise MalformedRecordError(f"output holds a value that is not a finite number: {str(values)[:60]}")
    if any(value < 0 or value > 1 for value in values) or abs(sum(values) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise MalformedRecordError(f"output is not probabilities in [0, 1] summing to 1: {str(values)[:60]}")
    return tuple(float(value) for value in values)


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecordError(f"eventMetadata.inferenceTime {text[:40]!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_record(line: str, source: str, variant: str = UNNAMED_VARIANT) -> CapturedInference:
    """One capture line to a record; MalformedRecordError says what is wrong with it."""
    record = _json(line, "the line")
    capture = _object(record, "captureData", "captureData")
    metadata = _object(record, "eventMetadata", "eventMetadata")
    inference_id = metadata.get("inferenceId")
    request = _payload(capture, "endpointInput")
    if not request:
        raise MalformedRecordError("captureData.endpointInput.data is empty")
    return CapturedInference(
        event_id=_text(metadata, "eventId", "eventMetadata.eventId"),
        time=_time(_text(metadata, "inferenceTime", "eventMetadata.inferenceTime")),
        variant=variant,
        input_type=str(capture["endpointInput"].get("observedContentType", "")),
        input=request,
        probabilities=_probabilities(_payload(capture, "endpointOutput")),
        source=source,
        inference_id=inference_id if isinstance(inference_id, str) else None,
    )


def local_files(location: Path) -> Iterator[CaptureFile]:
    """The capture files under a folder (or one .jsonl file); refused by name when there is nothing to read.

    Checked before the first file is read, so a wrong path fails at once.
    """
    if location.is_file():
        if location.suffix != CAPTURE_SUFFIX:
            raise CaptureNotFoundError(f"{location} is a file but not a capture file ({CAPTURE_SUFFIX}): "
                                       "give the capture folder or an s3:// prefix")
        paths = [location]
    elif location.is_dir():
        paths = sorted(path for path in location.rglob(f"*{CAPTURE_SUFFIX}") if path.is_file())
        if not paths:
            raise CaptureNotFoundError(f"{location} holds no capture files (*{CAPTURE_SUFFIX}): is it the endpoint's "
                                       "capture destination?")
    else:
        raise CaptureNotFoundError(f"{location} does not exist: give the endpoint's capture folder or an s3:// prefix")

    def read(path: Path) -> CaptureFile:
        try:
            text = path.read_text(errors="replace")
        except OSError as error:
            raise CaptureNotFoundError(f"{path} cannot be read: {error.strerror}") from error
        return str(path), variant_from_key(path.relative_to(location).as_posix() if path != location
                                           else path.as_posix()), text

    return (read(path) for path in paths)


def hour_prefixes(since: datetime, until: datetime) -> list[str]:
    """`yyyy/mm/dd/hh/` of every hour from since to until (UTC), the folders capture writes into."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = int((until.astimezone(UTC) - start) // timedelta(hours=1)) + 1
    return [f"{start + timedelta(hours=offset):%Y/%m/%d/%H}/" for offset in range(max(0, hours))]


def s3_files(s3: Any, bucket: str, prefix: str, *, since: datetime | None = None,
             until: datetime | None = None) -> Iterator[CaptureFile]:
    """The capture files under s3://bucket/prefix; with `since`, only the hour folders from since to until.

    `prefix` is the endpoint's capture prefix (`<destination>/<endpoint>`) when `since` is given: the
    variants are listed under it, then only the hours of the window, so an hourly check reads an hour
    of capture, not its whole history.
    """
    base = prefix.rstrip("/") + "/" if prefix else ""
    paginator = s3.get_paginator("list_objects_v2")
    if since is None:
        prefixes = [base]
    else:
        variants = [common["Prefix"] for page in paginator.paginate(Bucket=bucket, Prefix=base, Delimiter="/")
                    for common in page.get("CommonPrefixes", [])]
        hours = hour_prefixes(since, until or datetime.now(UTC))
        prefixes = [variant + hour for variant in variants for hour in hours]
    for listed in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=listed):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith(CAPTURE_SUFFIX):
                    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    yield f"s3://{bucket}/{key}", variant_from_key(key), body.decode(errors="replace")


def _dominant_width(widths: Sequence[int]) -> int | None:
    return Counter(widths).most_common(1)[0][0] if widths else None


def read_capture(files: Iterable[CaptureFile], *, class_names: Sequence[str] | None = None,
                 decode: Decode | None = None) -> CaptureSet:
    """Every valid record of `files`, ordered by inferenceTime (ties in file order).

    `class_names`: the model's classes; a record with another number of probabilities is malformed
    (without it, the most common count is taken as the model's). `decode`: turns each request into
    the model's input; a request it refuses is malformed, and the images are kept on the result.
    """
    result = CaptureSet()
    parsed: list[CapturedInference] = []
    for name, variant, text in files:
        result.files += 1
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                source = f"{name}:{number}"
                try:
                    parsed.append(parse_record(line, source, variant))
                except MalformedRecordError as error:
                    result.malformed.append(f"{source}: {error}")
    width = len(class_names) if class_names is not None else _dominant_width([len(r.probabilities) for r in parsed])
    fitting = [record for record in parsed if len(record.probabilities) == width]
    misfits = [record for record in parsed if len(record.probabilities) != width]
    if class_names is not None and len(misfits) > len(fitting):
        counts = sorted({len(record.probabilities) for record in misfits})
        raise ClassSetMismatchError(
            f"{len(misfits)} of {len(parsed)} capture records carry {' or '.join(map(str, counts))} probabilities, but "
            f"the model's classes are {', '.join(class_names)} ({width}): the capture comes from another model")
    result.malformed += [f"{r.source}: {len(r.probabilities)} probabilities, but the model has {width} classes"
                         for r in misfits]
    ordered = sorted(enumerate(fitting), key=lambda item: (item[1].time, item[0]))
    result.records = [record for _, record in ordered]
    if decode is not None:
        result = _decoded(result, decode)
    return result


def _decoded(capture: CaptureSet, decode: Decode) -> CaptureSet:
    kept: list[CapturedInference] = []
    images: list[np.ndarray] = []
    for record in capture.records:
        try:
            image = decode(record.input)
        except Exception as error:  # noqa: BLE001 - whatever the preprocessing refuses is not an image input
            capture.malformed.append(f"{record.source}: the input ({record.input_type or 'no content type'}, "
                                     f"{len(record.input)} bytes) is not an image: {type(error).__name__}: {error}")
            continue
        kept.append(record)
        images.append(image)
    stacked = np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)
    return replace(capture, records=kept, images=stacked)
