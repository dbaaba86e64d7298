"""The black-box decoder's training settings, defined once. No TensorFlow here: the CLI reads its
defaults and choices from this module without loading it."""

from dataclasses import dataclass

ARCHS = ("upsample", "seed")  # see attack/decoders.py
DEFAULT_ARCH = "upsample"
LOSSES = ("mse", "bce", "bce+ssim")


@dataclass
class TrainConfig:
    arch: str = DEFAULT_ARCH
    epochs: int = 40
    batch: int = 32
    learning_rate: float = 1e-3
    loss: str = "auto"  # one of LOSSES, or "auto": the seed's MSE for `seed`, else BCE + SSIM
    augment: bool = False
    val_percent: int = 5
    patience: int = 8  # epochs without a better validation loss before stopping; 0: never stop
    seed: int = 1

    def validate(self) -> "TrainConfig":
        if self.arch not in ARCHS:
            raise ValueError(f"unknown decoder arch '{self.arch}'; "
                             f"expected one of {', '.join(ARCHS)}")
        if self.loss not in ("auto", *LOSSES):
            raise ValueError(f"unknown loss '{self.loss}'; expected auto, {', '.join(LOSSES)}")
        if self.epochs < 1 or self.batch < 1 or self.patience < 0:
            raise ValueError("epochs and batch must be positive integers, patience >= 0")
        if not 0 < self.val_percent < 50:
            raise ValueError(f"val_percent must be in 1..49, got {self.val_percent}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        return self

    def resolved_loss(self) -> str:
        if self.loss == "auto":
            return "mse" if self.arch == "seed" else "bce+ssim"
        return self.loss


WHITEBOX_IMAGES = 64  # test images a white-box evaluation inverts by default (each is optimised)


@dataclass
class WhiteboxConfig:
    """rMLE settings (attack/whitebox.py). `prior_weight` pulls each image toward its start when
    the start is a decoder's reconstruction (a learned prior); a blank start has no pull."""

    steps: int = 300
    learning_rate: float = 0.1
    tv_weight: float = 2.0
    prior_weight: float = 100.0
    ink: float = 0.05  # the blank start's ink level in every pixel
    batch: int = 64
    seed: int = 1

    def validate(self) -> "WhiteboxConfig":
        if self.steps < 1 or self.batch < 1:
            raise ValueError("steps and batch must be positive integers")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.tv_weight < 0 or self.prior_weight < 0:
            raise ValueError("tv_weight and prior_weight must be non-negative")
        if not 0 < self.ink < 1:
            raise ValueError(f"ink must be strictly between 0 and 1, got {self.ink}")
        return self
