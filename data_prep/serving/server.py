"""Run the local endpoint until interrupted."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from common import settings
from common.servers import BackgroundServer
from data_prep.serving.app import EndpointConfig, create_app
from data_prep.serving.capture import DataCapture
from data_prep.serving.predictor import Predictor


def start_endpoint(
    model_dir: Path, *, host: str = "127.0.0.1", port: int = 0, endpoint_name: str | None = None,
    capture_destination: str | None = None, sampling_percentage: int = 100,
    capture_endpoint_name: str | None = None,
) -> tuple[BackgroundServer, DataCapture | None]:
    """Start the endpoint in a background thread; the caller stops the server and closes the capture.

    Capture files go under the endpoint's name (`capture_endpoint_name`, default the template's
    EndpointName), as SageMaker writes them.
    """
    predictor = Predictor(model_dir)
    capture_name = endpoint_name or capture_endpoint_name or settings.endpoint_name()
    capture = (DataCapture(capture_destination, capture_name,
                           sampling_percentage=sampling_percentage) if capture_destination else None)
    app = create_app(predictor, capture, EndpointConfig(endpoint_name=endpoint_name))
    return BackgroundServer(app, host=host, port=port, name="model-endpoint").start(), capture


def serve(model_dir: Path, *, host: str, port: int, endpoint_name: str | None, capture_destination: str | None,
          sampling_percentage: int, announce: Callable[[str], None] = print) -> None:
    server, capture = start_endpoint(model_dir, host=host, port=port, endpoint_name=endpoint_name,
                                     capture_destination=capture_destination, sampling_percentage=sampling_percentage)
    announce(f"serving {model_dir} on http://{host}:{server.port} "
             f"(AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://{host}:{server.port}); Ctrl-C stops")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if capture is not None:
            capture.close()
