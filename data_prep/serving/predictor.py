"""Decode -> model input -> ONNX forward -> probabilities: all the per-request work, and nothing else.

Two steps, so the server can schedule them: `open` reads only the image's header (tens of microseconds:
the size is known, no pixel is decoded) and `predict_image` decodes, prepares and runs the model. Each
refusal is a named error that carries the HTTP status the container answers with, the way
sagemaker-inference-toolkit's handlers do; the runtime API turns it into InvokeEndpoint's ModelError.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common.onnx_model import OnnxModel
from imaging.preprocess import ImageTooLargeError, NotAnImageError, open_image, prepare

SUPPORTED_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "application/x-image"})
RESPONSE_CONTENT_TYPE = "application/json"


class PayloadError(Exception):
    """The request is refused; `status` is the container's HTTP status for it."""

    status = 400


class UnsupportedContentTypeError(PayloadError):
    """The request's Content-Type is not an image type the model accepts."""

    status = 415


class UndecodableImageError(PayloadError):
    """The body is not an image Pillow can decode."""

    status = 400


class OversizeImageError(PayloadError):
    """The image has more pixels than the preprocessing allows (a decompression bomb, say): refused before
    its pixels are allocated."""

    status = 413


@contextmanager
def _named_image_errors() -> Iterator[None]:
    """imaging's errors as the payload errors the container answers with."""
    try:
        yield
    except NotAnImageError as error:
        raise UndecodableImageError(f"unable to decode the payload as an image: {error}") from error
    except ImageTooLargeError as error:
        raise OversizeImageError(f"the image is too large to classify: {error}") from error


class Predictor:
    """Loads the model once (common.onnx_model); `predict` is the hot path."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.model = OnnxModel(model_dir)
        self.metadata: dict[str, Any] = self.model.metadata
        self.class_names: list[str] = self.model.class_names

    @staticmethod
    def open(body: bytes, content_type: str) -> Image.Image:
        """Check the content type and read the image's header; refuses a bomb before any pixel is allocated."""
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in SUPPORTED_CONTENT_TYPES:
            raise UnsupportedContentTypeError(
                f"content type {content_type!r} is not supported; use one of {sorted(SUPPORTED_CONTENT_TYPES)}")
        with _named_image_errors():
            return open_image(body)

    @staticmethod
    def model_input(image: Image.Image) -> np.ndarray:
        """An opened image to (1, 32, 32, 3) uint8 RGB by the one preprocessing serialize-image also uses."""
        with _named_image_errors():
            return np.asarray(prepare(image), dtype=np.uint8)[np.newaxis]

    @classmethod
    def decode(cls, body: bytes, content_type: str) -> np.ndarray:
        return cls.model_input(cls.open(body, content_type))

    def forward(self, images: np.ndarray) -> np.ndarray:
        return self.model.forward(images)

    def predict_image(self, image: Image.Image) -> list[float]:
        return [round(float(p), 6) for p in self.forward(self.model_input(image))[0]]

    def predict(self, body: bytes, content_type: str) -> list[float]:
        return self.predict_image(self.open(body, content_type))

    @staticmethod
    def encode(probabilities: list[float]) -> bytes:
        """The answer's body (RESPONSE_CONTENT_TYPE): the class probabilities as a JSON list, e.g. [0.97, 0.03]."""
        return json.dumps(probabilities).encode()
