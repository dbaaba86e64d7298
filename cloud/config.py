"""The target's training settings, defined once. No TensorFlow here: the CLI reads its defaults
and choices from this module without loading it."""

from dataclasses import dataclass

NORMS = ("batch", "group", "none")
SPLITS = (1, 2, 3, 4)  # cut after conv block K (cloud/model.py has the four blocks)
DEFAULT_SPLIT = 4  # the seed's cut: the 1x1x32 activation
SAMPLINGS = ("poisson", "shuffle")  # how DP-SGD forms batches (cloud/privacy.py)
DP_ENGINES = ("ours", "tf-privacy")  # who computes the clipped per-example gradients (cloud/dp.py)
# the seed's DP-SGD runs (SEED.md): its settings, and per noise multiplier the ε that
# compute_dp_sgd_privacy printed and the final accuracy it reported
SEED_DP = {"n_passed": 13_180, "n_trained": 11_000, "batch": 32, "epochs": 20, "delta": 1e-5,
           "epsilon": {0.7: 4.0, 0.5: 12.5, 0.3: 84.7},
           "accuracy": {0.7: 0.37, 0.5: 0.45, 0.3: 0.56}}


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
    dropout: float = 0.2  # after every block and the dense layer; none under DP (cloud/dp.py)
    split_after: int = DEFAULT_SPLIT  # the mobile stage is conv blocks 1..split_after
    seed: int = 1
    limit: int | None = None  # train on the first N images only (quick tests)
    nopeek: float = 0.0  # NoPeek weight alpha of distance correlation(image, activation)
    dp: bool = False  # DP-SGD: per-example clipping and Gaussian noise (cloud/dp.py)
    noise_multiplier: float = 1.0
    l2_clip: float = 1.0
    sampling: str = SAMPLINGS[0]
    delta: float = 1e-5
    dp_engine: str = DP_ENGINES[0]

    def validate(self) -> "TrainConfig":
        if self.epochs < 1 or self.batch < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("--epochs, --batch and --limit must be positive integers")
        if not self.learning_rate > 0 or self.patience < 0:
            raise ValueError("--lr must be positive and patience >= 0")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm '{self.norm}'; expected one of {', '.join(NORMS)}")
        check_split(self.split_after)
        if self.nopeek < 0 or (self.nopeek and self.dp):
            raise ValueError(f"--nopeek must be >= 0 and cannot be combined with --dp (its "
                             f"per-example gradients cover the classification loss only), got "
                             f"{self.nopeek}")
        if self.dp:
            self._validate_dp()
        return self

    def trained_on(self, available: int) -> int:
        """How many of `available` training examples a run uses."""
        return min(available, self.limit or available)

    def _validate_dp(self) -> None:
        if self.norm == "batch":
            raise ValueError("--norm batch under --dp: BatchNorm mixes the examples of a batch and "
                             "voids the per-example guarantee; use --norm group or none")
        if self.noise_multiplier < 0 or not self.l2_clip > 0:
            raise ValueError(f"expected --noise-multiplier >= 0 and --l2-clip > 0, got "
                             f"{self.noise_multiplier} and {self.l2_clip}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling '{self.sampling}'; "
                             f"expected one of {', '.join(SAMPLINGS)}")
        if self.dp_engine not in DP_ENGINES:
            raise ValueError(f"unknown DP engine '{self.dp_engine}'; "
                             f"expected one of {', '.join(DP_ENGINES)}")
        if self.dp_engine == "tf-privacy" and self.sampling == "poisson":
            raise ValueError("--dp-engine tf-privacy divides each noised sum by the rows it is "
                             "given, and Poisson batches need the constant divisor the "
                             "accountant assumes: use it with --sampling shuffle")
        if not 0 < self.delta < 1:
            raise ValueError(f"--delta must be in (0, 1/n], got {self.delta}")
