"""Start the local endpoint: one model (variant AllTraffic) or a champion and a challenger, with data capture."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import settings
from common.errors import InputError
from common.servers import BackgroundServer, check_port_free, wait_for_stop_signal
from data_prep.serving.app import EndpointConfig, Variant, VariantConfigError, create_app
from data_prep.serving.capture import CaptureLostError, DataCapture
from data_prep.serving.predictor import Predictor

CHAMPION, CHALLENGER = "champion", "challenger"
VARIANT_NAME_KEY = "variant_name"  # a model's metadata.json may name the variant it is served as


class EndpointSetupError(InputError):
    """The models cannot be served as the variants asked for."""


def load_variants(model_dir: Path, challenger_model_dir: Path | None = None,
                  challenger_weight: float = 0.0) -> list[Variant]:
    """One variant `AllTraffic`, or two weighted 1 - W and W, named by their metadata.json's `variant_name`
    when it records one, else `champion` and `challenger`."""
    champion = Predictor(model_dir)
    if challenger_model_dir is None:
        return [Variant(settings.DEFAULT_VARIANT, champion)]
    if not 0.0 <= challenger_weight <= 1.0:
        raise EndpointSetupError(f"the challenger's weight must lie in [0, 1], got {challenger_weight}")
    challenger = Predictor(challenger_model_dir)
    if challenger.class_names != champion.class_names:
        raise EndpointSetupError(f"the challenger's classes {challenger.class_names} differ from the champion's "
                                 f"{champion.class_names}")
    variants = [Variant(str(champion.metadata.get(VARIANT_NAME_KEY) or CHAMPION), champion, 1.0 - challenger_weight),
                Variant(str(challenger.metadata.get(VARIANT_NAME_KEY) or CHALLENGER), challenger, challenger_weight)]
    if variants[0].name == variants[1].name:
        raise EndpointSetupError(f"both models record the variant name {variants[0].name!r} in metadata.json; "
                                 "variants need distinct names")
    return variants


def start_endpoint(
    model_dir: Path, *, host: str = "127.0.0.1", port: int = 0, endpoint_name: str | None = None,
    capture_destination: str | None = None, sampling_percentage: int = 100,
    challenger_model_dir: Path | None = None, challenger_weight: float = 0.0, seed: int | None = None,
) -> tuple[BackgroundServer, DataCapture | None]:
    """Start the endpoint in a background thread; the caller stops the server, then closes the capture.

    The runtime API answers only `endpoint_name` (default: the template's EndpointName, the name
    classify-image calls), as SageMaker does; capture files go under that name and each variant's name.
    A capture destination that cannot be written raises a named error before anything is served.
    """
    return start_variants(load_variants(model_dir, challenger_model_dir, challenger_weight), host=host, port=port,
                          endpoint_name=endpoint_name, capture_destination=capture_destination,
                          sampling_percentage=sampling_percentage, seed=seed)


def start_variants(variants: list[Variant], *, host: str = "127.0.0.1", port: int = 0,
                   endpoint_name: str | None = None, capture_destination: str | None = None,
                   sampling_percentage: int = 100, seed: int | None = None, capture_s3_client: Any = None,
                   capture_clock: Callable[[], float] = time.monotonic,
                   ) -> tuple[BackgroundServer, DataCapture | None]:
    """start_endpoint for variants already loaded; `capture_s3_client` writes an s3:// capture (default: a client
    from the environment's AWS session); `capture_clock` is the capture's clock, which decides when a buffered
    record is due to be written (a test that must control when files are written passes a clock it drives)."""
    name = endpoint_name or settings.endpoint_name()
    capture = (DataCapture(capture_destination, name, sampling_percentage=sampling_percentage, seed=seed,
                           s3_client=capture_s3_client, clock=capture_clock) if capture_destination else None)
    try:
        app = create_app(variants, capture, EndpointConfig(endpoint_name=name), seed=seed)
        return BackgroundServer(app, host=host, port=port, name="model-endpoint").start(), capture
    except BaseException as error:
        if capture is not None:
            capture.close()
        if isinstance(error, VariantConfigError):
            raise EndpointSetupError(str(error)) from error
        raise


def serve(model_dir: Path, *, host: str, port: int, endpoint_name: str | None, capture_destination: str | None,
          sampling_percentage: int, challenger_model_dir: Path | None = None, challenger_weight: float = 0.0,
          seed: int | None = None, announce: Callable[[str], None] = print, close_timeout: float = 20.0,
          capture_s3_client: Any = None, capture_clock: Callable[[], float] = time.monotonic) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop taking requests and flush the capture (retrying for up to
    `close_timeout` seconds; SageMaker gives a container 30 s between SIGTERM and SIGKILL). `capture_clock`:
    see start_variants."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    check_port_free(host, port)  # before the model loads and the capture folder is made
    variants = load_variants(model_dir, challenger_model_dir, challenger_weight)
    server, capture = start_variants(variants, host=host, port=port, endpoint_name=endpoint_name,
                                     capture_destination=capture_destination, sampling_percentage=sampling_percentage,
                                     seed=seed, capture_s3_client=capture_s3_client, capture_clock=capture_clock)
    url = f"http://{host}:{server.port}"
    shares = ", ".join(f"{variant.name} (weight {variant.weight:g})" for variant in variants)

    def ready() -> None:  # once SIGTERM and Ctrl-C stop it cleanly
        announce(f"serving endpoint {endpoint_name or settings.endpoint_name()} on {url} "
                 f"(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={url}); variants: {shares}; Ctrl-C stops")
        if capture is not None:
            announce(f"data capture: {capture.destination} ({sampling_percentage}%), health at {url}/capture-health")

    try:
        wait_for_stop_signal(ready)
    finally:
        server.stop()
        if capture is not None:
            capture.close(close_timeout)
            health = capture.health()
            announce(f"data capture: {health.written_records} records written, {health.dropped_records} dropped")
    if capture is not None and health.dropped_records:
        raise CaptureLostError(f"{health.dropped_records} captured records never reached {health.destination} "
                               f"(last error: {health.last_error or 'the buffer was full'})")
