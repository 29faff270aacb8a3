"""A model folder's ONNX file, loaded the one way the endpoint loads it: what `data_prep serve`, the archive's
inference hooks (data_prep.serving.predictor) and the monitoring report's re-scoring of captured inputs run.

The graph takes uint8 RGB images (N, 32, 32, 3) and returns class probabilities in metadata.json's class order;
everything else (normalisation, temperature, softmax) is inside it (data_prep.training.export).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from common.artefacts import ArtefactError, check_model_dir


class OnnxModel:
    """The checked folder's metadata and an ONNX Runtime session over its model file (CPU, one thread: a 32x32
    forward is far too small to share across threads, and the other core is left to the HTTP server)."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.metadata: dict[str, Any] = check_model_dir(model_dir)
        self.class_names: list[str] = list(self.metadata["class_names"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model_file = model_dir / self.metadata["model_file"]
        try:
            self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises plain pybind errors (InvalidProtobuf, ...)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ArtefactError(f"{model_file} cannot be loaded as an ONNX model ({reason}): train again") from error
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, images: np.ndarray) -> np.ndarray:
        """(N, 32, 32, 3) uint8 -> (N, classes) probabilities."""
        probabilities: np.ndarray = self.session.run(None, {self.input_name: images})[0]
        return probabilities
