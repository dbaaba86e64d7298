"""`bench dp`: seconds per epoch of DP-SGD training against non-private training of the same
network (ours on Poisson batches; ours and tensorflow-privacy's on shuffled batches)."""

import platform

from splitleak.cloud.config import TrainConfig
from splitleak.cloud.rundir import DEFAULT_PROTOCOL

EPOCHS = 3  # of each training; the first traces the graphs and is not counted
BATCH = TrainConfig.batch
NOISE = 1.0  # DP-SGD's noise multiplier
BAR, GOAL = 2.0, 1.2  # DP-SGD / non-private seconds per epoch: at most, and hoped for


def run(*, epochs: int = EPOCHS, batch: int = BATCH, limit: int | None = None,
        omniglot_dir: str | None = None) -> dict:
    """Train the lite target four times in this process, the same network (GroupNorm, no
    dropout, no augmentation) and batch size: non-private, DP-SGD, and on shuffled batches
    DP-SGD by ours and by tensorflow-privacy's DPModel; their seconds per epoch and ratios."""
    if epochs < 2 or batch < 1 or (limit is not None and limit < 1):
        raise ValueError("--epochs must be at least 2 (the first traces), --batch and --limit "
                         "positive")
    from dataclasses import replace

    from splitleak.cloud.data import load_protocol
    from splitleak.tools.bench.timing import fit_seconds

    proto = load_protocol(DEFAULT_PROTOCOL, omniglot_dir)
    plain = TrainConfig(epochs=epochs, batch=batch, norm="group", dropout=0.0, augment=False,
                        patience=0, limit=limit)
    private = replace(plain, dp=True, noise_multiplier=NOISE)
    shuffled = replace(private, sampling="shuffle")  # the batches tensorflow-privacy's route needs
    seconds = {name: fit_seconds(proto, cfg) for name, cfg in (
        ("non_private", plain), ("dp_sgd", private), ("dp_sgd_shuffle", shuffled),
        ("tf_privacy_shuffle", replace(shuffled, dp_engine="tf-privacy")))}
    ratios = {k: round(v["median"] / seconds["non_private"]["median"], 2)
              for k, v in seconds.items() if k != "non_private"}
    return {"bench": "dp", "machine": platform.machine(), "epochs": epochs, "batch": batch,
            "images": seconds["dp_sgd"]["images"], "seconds_per_epoch": seconds,
            "ratios": ratios, "ratio": ratios["dp_sgd"], "bar": BAR, "goal": GOAL}


def describe(r: dict) -> str:
    s = r["seconds_per_epoch"]
    return (f"{r['images']:,} images, batch {r['batch']}, {r['epochs']} epochs each: non-private "
            f"{s['non_private']['median']:.2f} s/epoch, DP-SGD {s['dp_sgd']['median']:.2f} "
            f"s/epoch; ratio {r['ratio']:.2f} (bar {r['bar']}, goal {r['goal']})\n"
            f"on shuffled batches: ours {r['ratios']['dp_sgd_shuffle']:.2f}, tensorflow-privacy's "
            f"DPModel {r['ratios']['tf_privacy_shuffle']:.2f}")
