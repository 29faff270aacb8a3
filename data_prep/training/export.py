"""Write a trained ensemble as one ONNX graph plus the metadata the server and monitoring read.

The graph takes what the server decodes, uint8 RGB images (N, 32, 32, 3), and returns class
probabilities: normalisation, the flip view, the member average, the temperature and the softmax
are all inside it. The server therefore needs only onnxruntime, numpy and Pillow (no torch), and
the preprocessing cannot drift between training and serving.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.artefacts import write_model_metadata
from common.model_archive import MODEL_FILE, SHA256_KEY, sha256_file
from data_prep.training.train import TrainedEnsemble
from imaging.preprocess import MODEL_SIDE


class ServingGraph(nn.Module):
    def __init__(self, ensemble: TrainedEnsemble) -> None:
        super().__init__()
        self.members = nn.ModuleList(ensemble.members)
        self.register_buffer("mean", torch.tensor(ensemble.normalisation.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(ensemble.normalisation.std).view(1, 3, 1, 1))
        self.temperature = float(ensemble.temperature)
        self.mean: torch.Tensor
        self.std: torch.Tensor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        count = x.shape[0]
        views = torch.cat([x, x.flip(3)])
        logits = torch.stack([member(views) for member in self.members]).mean(0)
        logits = (logits[:count] + logits[count:]) / 2
        return torch.softmax(logits / self.temperature, dim=1)


def export_onnx(ensemble: TrainedEnsemble, path: Path) -> None:
    graph = ServingGraph(ensemble).eval()
    example = torch.zeros((2, MODEL_SIDE, MODEL_SIDE, 3), dtype=torch.uint8)
    torch.onnx.export(
        graph, (example,), str(path), dynamo=True, external_data=False, input_names=["image"],
        output_names=["probabilities"], dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=1024)}},
        verbose=False,
    )


def check_export(ensemble: TrainedEnsemble, path: Path, images: np.ndarray) -> float:
    """Largest absolute difference between the ONNX model and torch on the given images."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    exported = session.run(None, {session.get_inputs()[0].name: images})[0]
    return float(np.abs(exported - ensemble.probabilities(images)).max())


def write_model(ensemble: TrainedEnsemble, model_dir: Path, metrics: dict[str, Any],
                extra: dict[str, Any] | None = None) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(ensemble, model_dir / MODEL_FILE)
    metadata = {
        "format": "onnx",
        "model_file": MODEL_FILE,
        SHA256_KEY: sha256_file(model_dir / MODEL_FILE),  # which bytes: every later step checks and reports it
        "class_names": ensemble.class_names,
        "input": {"name": "image", "dtype": "uint8", "shape": ["N", MODEL_SIDE, MODEL_SIDE, 3], "layout": "NHWC RGB"},
        "output": {"name": "probabilities", "shape": ["N", len(ensemble.class_names)]},
        "normalisation": {"mean": ensemble.normalisation.mean, "std": ensemble.normalisation.std},
        "temperature": round(ensemble.temperature, 6),
        "training": {**ensemble.config.as_dict(), "torch": torch.__version__, "python": platform.python_version()},
        "metrics": metrics,
        **(extra or {}),
    }
    write_model_metadata(model_dir, metadata)
    return model_dir / MODEL_FILE
