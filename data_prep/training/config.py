"""Training configuration, importable without torch (the CLI reads its defaults at start-up)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

# The training job's source directory holds the archive's code/ folder under this name (data_prep.packaging writes
# it, the entry point copies it into SM_MODEL_DIR); here, where both read it without importing each other.
INFERENCE_CODE_DIR = "inference_code"


@dataclass(frozen=True)
class TrainConfig:
    members: int = 3  # K folds: K networks give out-of-fold logits to fit the temperature on
    serve_ensemble: bool = False  # serve the K fold networks (K times slower) instead of one trained on all data
    distill: float = 0.7  # weight of the fold networks' soft targets when training the served network (0: off)
    epochs: int = 40
    batch_size: int = 64
    peak_learning_rate: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutout: int = 0
    kfold: bool = True
    widths: tuple[int, ...] = (16, 32, 64)
    seed: int = 0
    threads: int = 2
    preset: str = "scratch"  # scratch: the small ResNet from scratch; transfer: ImageNet ResNet-18 fine-tuned
    input_size: int = 112  # transfer: the side the 32x32 input is resized to inside the network (and the ONNX graph)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS = ("scratch", "transfer")
# Fine-tuning pretrained weights wants a gentler step than training from scratch.
TRANSFER_OVERRIDES = {"peak_learning_rate": 0.01, "weight_decay": 1e-4}


def for_preset(preset: str, **values: object) -> TrainConfig:
    """A TrainConfig for `preset` (transfer: TRANSFER_OVERRIDES), with `values` on top."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: {', '.join(PRESETS)}")
    base = TRANSFER_OVERRIDES if preset == "transfer" else {}
    return TrainConfig(**{**base, **values, "preset": preset})  # type: ignore[arg-type]


def as_hyperparameters(config: TrainConfig) -> dict[str, str]:
    """The config as SageMaker hyperparameters (strings; a tuple as comma-separated values)."""
    return {name: ",".join(str(v) for v in value) if isinstance(value, tuple) else str(int(value))
            if isinstance(value, bool) else str(value) for name, value in config.as_dict().items()}


def from_hyperparameters(values: dict[str, str]) -> TrainConfig:
    """as_hyperparameters read back (what the training entry point receives); unknown names are refused."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown training hyperparameters: {', '.join(unknown)}")
    parsed: dict[str, object] = {}
    for name, text in values.items():
        default = getattr(TrainConfig, name)
        if isinstance(default, bool):
            parsed[name] = text.strip().lower() in {"1", "true"}
        elif isinstance(default, tuple):
            parsed[name] = tuple(int(part) for part in text.split(",") if part.strip())
        else:
            parsed[name] = type(default)(text)
    return TrainConfig(**parsed)  # type: ignore[arg-type]
