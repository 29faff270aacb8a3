"""The transfer preset: ResNet-18 in torchvision's state-dict layout, ImageNet weights loaded strictly from a file the
test writes, a failed download in one line, and the same ONNX contract (uint8 NHWC 32x32 in, probabilities out,
the resize inside the graph)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from data_prep.cli import main as data_prep_main
from data_prep.training import backbone
from data_prep.training.config import for_preset
from data_prep.training.local import train_local
from testkit.images import labelled_folder
from tests.support import run_main


def torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision/models/resnet.py's resnet18 state_dict, written from its definition (conv1 7x7, two BasicBlocks
    per stage, a 1x1 downsample where the stride or width changes, fc 512 -> 1000), not from our module."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, width: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (width,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix = f"layer{layer}.{block}"
            shapes[f"{prefix}.conv1.weight"] = (planes, inplanes if block == 0 else planes, 3, 3)
            bn(f"{prefix}.bn1", planes)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn2", planes)
            if block == 0 and layer > 1:
                shapes[f"{prefix}.downsample.0.weight"] = (planes, inplanes, 1, 1)
                bn(f"{prefix}.downsample.1", planes)
        inplanes = planes
    shapes["fc.weight"], shapes["fc.bias"] = (1000, 512), (1000,)
    return shapes


def test_our_resnet18_has_torchvisions_keys_and_shapes():
    ours = {key: tuple(value.shape) for key, value in backbone.ResNet18().state_dict().items()}
    assert ours == torchvision_resnet18_shapes()
    assert list(ours) == list(torchvision_resnet18_shapes())  # the same order too


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """An ImageNet-shaped resnet18 state_dict, as torchvision's file holds (random values, seeded)."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18-test.pth"
    torch.save(backbone.ResNet18(1000).state_dict(), path)
    return path


def test_the_weights_load_strictly_and_only_the_head_is_new(weights_file):
    state, source = backbone.read_weights(weights_file)
    network = backbone.pretrained_backbone(2, 64, state)
    loaded = network.backbone.state_dict()
    assert all(torch.equal(loaded[key], state[key]) for key in state if not key.startswith("fc."))
    assert loaded["fc.weight"].shape == (2, 512)
    assert source["file"] == str(weights_file) and len(source["sha256"]) == 64
    wrong = {key: value for key, value in state.items() if key != "layer4.1.bn2.running_var"}
    with pytest.raises(backbone.WeightsFileError, match="not torchvision's resnet18 layout: Missing key"):
        backbone.pretrained_backbone(2, 64, wrong)


def test_a_failed_download_is_one_line_with_what_to_pass(tmp_path, monkeypatch, capsys):
    def unreachable(url, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    data = labelled_folder(tmp_path / "images", per_class=4)
    result = run_main(data_prep_main, ["train", "local", "--preset", "transfer", "--data-dir", str(data),
                                       "--model-dir", str(tmp_path / "model")], monkeypatch=monkeypatch,
                      capsys=capsys)
    assert (result.status, result.stderr_lines[-1]) == (3, (
        f"WeightsUnavailableError: the ImageNet weights could not be downloaded from {backbone.RESNET18_URL} "
        "([Errno -3] Temporary failure in name resolution): pass --weights FILE (that file, downloaded elsewhere)"))
    assert not (tmp_path / "model" / "model.onnx").exists()


def test_transfer_training_keeps_the_onnx_contract_with_the_resize_inside(weights_file, tmp_path):
    data = labelled_folder(tmp_path / "images", per_class=6)
    config = for_preset("transfer", members=2, epochs=1, batch_size=8, threads=1, input_size=48)
    metrics = train_local(data, tmp_path / "model", config, validation_fraction=0.25, weights=weights_file)
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["training"]["preset"] == "transfer" and metadata["training"]["peak_learning_rate"] == 0.01
    assert metadata["pretrained"]["file"] == str(weights_file)
    assert metadata["normalisation"] == {"mean": backbone.IMAGENET_MEAN, "std": backbone.IMAGENET_STD}
    graph = onnx.load(str(tmp_path / "model" / "model.onnx"))
    inputs, outputs = graph.graph.input[0], graph.graph.output[0]
    assert inputs.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in inputs.type.tensor_type.shape.dim][1:] == [32, 32, 3]
    assert [d.dim_value for d in outputs.type.tensor_type.shape.dim][1:] == [2]
    assert "Resize" in {node.op_type for node in graph.graph.node} | {
        node.op_type for function in graph.functions for node in function.node}
    report = json.loads((tmp_path / "model" / "validation_report.json").read_text())
    assert report["onnx_max_abs_difference"] <= 1e-4 and metrics["count"] > 0
    probabilities = np.array([row["probabilities"] for row in report["predictions"]])
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
