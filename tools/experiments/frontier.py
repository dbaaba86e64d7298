"""The privacy-utility frontier's settings: defences as the papers run them, at the cuts after
blocks 2 and 3, and the job that trains and attacks one of them.

Edge noise is a multiple K of the target's activation std on the training images (Gaussian σ or
Laplace b), so "K" means the same signal-to-noise ratio on every target; the head either trained
with that noise at the cut (Titcombe et al. 2021) or never saw it. Attacker-aware training with a
bottleneck is ResSFL's (Li et al. 2022). NoPeek (Vepakomma et al. 2020) and DP-SGD rows are plain
settings (tools/experiments/job.py). Every row is scored by fresh attackers trained after the
target is frozen, naive and adaptive, and the white box: never by the adversary it trained
against (its last MSE is kept beside the row, for comparison only).

A defended setting's target trains through cloud/train_defended.py; the rest of its job is
job.run's, on the setting with the noise as an absolute edge defence.
"""

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.tools.experiments.job import Setting, key_hash, target_dir

STD_IMAGES = 512  # training images whose clean activations set an untrained target's noise scale


@dataclass(frozen=True)
class DefendedSetting(Setting):
    """A setting with a defence trained in or scaled by the target: `noise` "gauss:K" or
    "laplace:K" (K x the activation std, added at the edge), `noise_trained` (the head trained
    with it), `adversarial` α and `bottleneck` C (cloud/defended.py)."""

    noise: str | None = None
    noise_trained: bool | None = None
    adversarial: float | None = None
    bottleneck: int | None = None

    def defence(self):
        from splitleak.cloud.defended import Defence

        return Defence(train_noise=self.noise if self.noise and self.noise_trained else "",
                       adversarial=self.adversarial or 0.0, bottleneck=self.bottleneck or 0)

    def target_key(self) -> str:
        trained = {"train_noise": self.noise if self.noise_trained else None,
                   "adversarial": self.adversarial, "bottleneck": self.bottleneck}
        trained = {k: v for k, v in trained.items() if v}
        return key_hash(asdict(self.train_config()) | trained) if trained else super().target_key()


def edge_defense(s: DefendedSetting, std: float) -> str:
    """The absolute edge defence of s's relative noise for a target of activation std `std`."""
    if not s.noise:
        return ""
    kind, _, multiple = s.noise.partition(":")
    return f"noise:{kind}:{float(multiple) * std:.6g}"


def run(s: DefendedSetting, proto, models: Path) -> tuple[dict, list]:
    """Train the defended target if missing (job.run trains any other), then job.run on the
    setting with its noise made an absolute edge defence; the row keeps s's own key and fields."""
    from splitleak.cloud import train_defended
    from splitleak.tools.experiments import job

    clock, target, defence = time.monotonic(), target_dir(models, s), s.defence()
    trained, std, spec = 0.0, None, ""
    if defence.any() and not rundir.finished(target):
        train_defended.run(proto, s.train_config(), defence, target, force=True)
        trained = round(time.monotonic() - clock, 1)
    if s.noise:  # the noise scales with the target's std: train an undefended target first
        if not rundir.finished(target):
            from splitleak.cloud import train

            train.run(proto, s.train_config(), target, force=True)
            trained = round(time.monotonic() - clock, 1)
        std = activation_std(target, proto)
        spec = edge_defense(s, std)
    row, lines = job.run(replace(s, defense=spec), proto, models)
    metrics = rundir.read_metrics(target)
    adversary = [e["adversary_mse"] for e in metrics["epochs"] if "adversary_mse" in e]
    row |= {"key": s.key(), "setting": asdict(s), "edge_defense": spec,
            "train_activation_std": std,
            "snr": row["activation_std"] / float(spec.rsplit(":", 1)[1]) if spec else None,
            "training_adversary_mse": adversary[-1] if adversary else None}
    if trained:
        row["seconds"]["target"] = trained
    return row, lines


def activation_std(target: Path, proto) -> float:
    """The std of the target's clean activations on its first training images (recorded by a
    defended run, measured here for an undefended one)."""
    defence = rundir.read_metrics(target).get("defence")
    if defence:
        return float(defence["activation_std"])
    return float(rundir.device(target).run(proto.train.images[:STD_IMAGES]).std())
