"""ImageNet knowledge for the `transfer` preset: ResNet-18 written out in torchvision's state-dict layout.

torchvision does not import beside this project's torch, so the network is our own nn.Module whose
state_dict has exactly torchvision's keys and shapes (torchvision/models/resnet.py: conv1 7x7/2, bn1,
maxpool, layer1..layer4 of two BasicBlocks each with conv1/bn1/conv2/bn2 and a 1x1 `downsample`
(Sequential: conv, bn) where the stride or width changes, avgpool, fc): torchvision's published ImageNet
weights load into it with strict=True.

Where the weights come from: `--weights FILE` (a torchvision resnet18 state_dict, e.g. resnet18-f37072fd.pth),
else torch.hub downloads them from torchvision's URL and checks the hash in the file name (what a SageMaker
training container does: it reaches the internet). A failed download is one line that says what to pass.

The fine-tuned classifier keeps the served contract: it takes the 32x32 images every road prepares,
normalised by ImageNet's mean and std, and resizes them inside the network (so inside the ONNX graph)
to `input_size` before the backbone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.errors import EnvironmentProblem
from data_prep.errors import DataPrepError
from data_prep.training.network import BasicBlock

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"  # ResNet18_Weights.IMAGENET1K_V1
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (width, stride of the first block) of layer1..layer4
FEATURES = 512


class WeightsUnavailableError(EnvironmentProblem):
    """The ImageNet weights could not be downloaded (exit 3): the message says which file to pass instead."""


class WeightsFileError(DataPrepError):
    """The --weights file is not a torchvision resnet18 state_dict (exit 2)."""


class ResNet18(nn.Module):
    """torchvision's resnet18, key for key and shape for shape."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels = 64
        for index, (width, stride) in enumerate(STAGES, start=1):
            setattr(self, f"layer{index}", nn.Sequential(BasicBlock(in_channels, width, stride),
                                                         BasicBlock(width, width, 1)))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for index in range(1, len(STAGES) + 1):
            x = getattr(self, f"layer{index}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class TransferNet(nn.Module):
    """The 32x32 input resized to `input_size` inside the network, then ResNet-18 with a new `num_classes` head."""

    def __init__(self, num_classes: int, input_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.backbone = ResNet18(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False)
        return self.backbone(x)


def read_weights(weights: Path | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, where it came from: file or URL, and its sha256). Downloads when no file is given."""
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as error:  # noqa: BLE001 - torch.load raises many kinds for a file that is not a state_dict
            raise WeightsFileError(f"{weights} is not a torch state_dict ({type(error).__name__}): pass a "
                                   f"torchvision resnet18 weights file such as {RESNET18_URL.rsplit('/', 1)[-1]}") \
                from error
        source = {"file": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    else:
        try:
            state = torch.hub.load_state_dict_from_url(RESNET18_URL, map_location="cpu", progress=False,
                                                       check_hash=True, weights_only=True)
        except Exception as error:  # noqa: BLE001 - URLError, socket errors, a hash mismatch: all one line
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise WeightsUnavailableError(f"the ImageNet weights could not be downloaded from {RESNET18_URL} "
                                          f"({reason}): pass --weights FILE (that file, downloaded elsewhere)") \
                from error
        source = {"url": RESNET18_URL}
    if not isinstance(state, dict):
        raise WeightsFileError(f"{weights or RESNET18_URL} holds a {type(state).__name__}, not a state_dict")
    return state, source


def pretrained_backbone(num_classes: int, input_size: int, state: dict[str, torch.Tensor]) -> TransferNet:
    """A TransferNet whose backbone holds the ImageNet weights (loaded strictly) and a fresh head."""
    network = TransferNet(num_classes, input_size)
    imagenet = ResNet18(1000)
    try:
        imagenet.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise WeightsFileError(f"the weights are not torchvision's resnet18 layout: {first}") from error
    body = {key: value for key, value in imagenet.state_dict().items() if not key.startswith("fc.")}
    network.backbone.load_state_dict({**network.backbone.state_dict(), **body}, strict=True)
    return network
