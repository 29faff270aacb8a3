"""The SageMaker inference hooks: the model archive's `code/inference.py` is this file, copied when packaging.

SageMaker's PyTorch inference container (sagemaker-pytorch-inference, on sagemaker-inference) imports it
and calls, per the toolkit's Transformer: `model_fn(model_dir)` once, then for each request
`input_fn(body, content_type)`, `predict_fn(data, model)` and `output_fn(prediction, accept)`. Each hook
is one step of `data_prep serve`'s own code (data_prep.serving.predictor, shipped beside it in `code/`):
decode (header only, the content type checked), preprocess + forward, encode. So the endpoint answers
exactly as the local one: the same content types, the same JSON probabilities, the same refusals with the
same HTTP statuses (415 a content type, 400 an undecodable body, 413 an oversize image).

Every hook is defined: a hook left out would fall back to the toolkit's default, which expects a
TorchScript model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from data_prep.serving.predictor import RESPONSE_CONTENT_TYPE, PayloadError, Predictor


def _as_toolkit_error(error: PayloadError) -> Exception:
    """The payload error as sagemaker-inference's error that carries its HTTP status (the container answers
    with it); the error itself where the toolkit is not installed (tests of the hooks alone)."""
    try:
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:
        return error
    return GenericInferenceToolkitError(error.status, str(error))


def model_fn(model_dir: str) -> Predictor:
    """Load the model once: the ONNX session over the archive's root (the model files are there)."""
    return Predictor(Path(model_dir))


def input_fn(request_body: bytes | bytearray | str, request_content_type: str) -> Image.Image:
    """Check the content type and read the image's header (a bomb is refused before any pixel is allocated)."""
    body = request_body.encode() if isinstance(request_body, str) else bytes(request_body)
    try:
        return Predictor.open(body, request_content_type or "")
    except PayloadError as error:
        raise _as_toolkit_error(error) from error


def predict_fn(input_data: Image.Image, model: Predictor) -> list[float]:
    """Decode, preprocess (the one preprocessing) and forward: the class probabilities, in training order."""
    try:
        return model.predict_image(input_data)
    except PayloadError as error:
        raise _as_toolkit_error(error) from error


def output_fn(prediction: list[float], accept: Any) -> tuple[bytes, str]:
    """The JSON list of probabilities, whatever the Accept header: what `data_prep serve` answers."""
    return Predictor.encode(prediction), RESPONSE_CONTENT_TYPE
