"""Read data capture for monitoring: a folder (the local endpoint's) or an s3:// prefix (a deployed endpoint's).

Parsing and validation are the drift core's (driftcheck.capture, shared with the CheckDriftFunction);
each request is decoded by the one image preprocessing (imaging.preprocess), so a record whose input
is not an image is listed as malformed instead of crashing the report or the check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.artefacts import is_s3_uri, parse_s3_uri
from common.progress import Progress
from driftcheck.capture import CapturedInference, CaptureFile, CaptureSet, local_files, s3_files
from driftcheck.capture import read_capture as read_capture_files
from driftcheck.errors import CaptureNotFoundError
from imaging.preprocess import to_model_input

__all__ = ["CaptureSet", "CapturedInference", "decode_image", "read_capture"]


def decode_image(payload: bytes) -> np.ndarray:
    """A captured request body as the model saw it: (32, 32, 3) uint8."""
    return np.asarray(to_model_input(payload), dtype=np.uint8)


def capture_files(location: str | Path, s3: Any = None) -> Iterator[CaptureFile]:
    text = str(location)
    if not is_s3_uri(text):
        return local_files(Path(text))
    target = parse_s3_uri(text)
    if s3 is None:
        from common.aws import session

        s3 = session().client("s3")
    return s3_files(s3, target.bucket, target.key)


def _counted(files: Iterator[CaptureFile], progress: Progress) -> Iterator[CaptureFile]:
    """The files, reporting each one read (the total is unknown while an S3 prefix is still being listed)."""
    for done, file in enumerate(files, start=1):
        yield file
        progress(done, None, "files")


def read_capture(location: str | Path, *, s3: Any = None, class_names: Sequence[str] | None = None,
                 decode: bool = True, progress: Progress | None = None) -> CaptureSet:
    """Every valid record under `location`, in inferenceTime order, with the images decoded (unless `decode` is
    False); CaptureNotFoundError when the location does not exist or holds no capture files. `progress` hears of
    each file read: a deployed endpoint's capture can be thousands of objects."""
    files = capture_files(location, s3)
    capture = read_capture_files(_counted(files, progress) if progress else files, class_names=class_names,
                                 decode=decode_image if decode else None)
    if capture.files == 0:
        raise CaptureNotFoundError(f"{location} holds no capture files (*.jsonl): is it the endpoint's capture "
                                   "destination?")
    return capture
