"""Training configuration, importable without torch (the CLI reads its defaults at start-up)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
