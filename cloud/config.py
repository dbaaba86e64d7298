"""The target's training settings, defined once. No TensorFlow here: the CLI reads its defaults
and choices from this module without loading it."""

from dataclasses import dataclass

NORMS = ("batch", "group", "none")
SPLITS = (1, 2, 3, 4)  # cut after conv block K (cloud/model.py has the four blocks)
DEFAULT_SPLIT = 4  # the seed's cut: the 1x1x32 activation


def check_split(split_after: int) -> int:
    if split_after not in SPLITS:
        raise ValueError(f"--split-after {split_after}: expected one of "
                         f"{', '.join(map(str, SPLITS))} (the conv block the mobile stage ends with)")
    return split_after


@dataclass
class TrainConfig:
    epochs: int = 20
    batch: int = 32
    learning_rate: float = 1e-3
    patience: int = 6  # epochs without a better validation accuracy before stopping
    augment: bool = True
    norm: str = "batch"
    split_after: int = DEFAULT_SPLIT  # the mobile stage is conv blocks 1..split_after
    seed: int = 1
    limit: int | None = None  # train on the first N images only (quick tests)

    def validate(self) -> "TrainConfig":
        if self.epochs < 1 or self.batch < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("--epochs, --batch and --limit must be positive integers")
        if not self.learning_rate > 0 or self.patience < 0:
            raise ValueError("--lr must be positive and patience >= 0")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm '{self.norm}'; expected one of {', '.join(NORMS)}")
        check_split(self.split_after)
        return self
