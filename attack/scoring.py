"""Scores of a reconstruction attack beside two trivial baselines, and the one result type of every
evaluation (black box, white box, capture).

Baselines on the same images: a blank page (all zeros: ink = 1, paper = 0) and the attacker set's
mean image — what an attacker gets from the activations without learning anything from them.
Nothing here times or writes anything: attack/evaluate.py's `save` writes an `Evaluation`.
"""

from dataclasses import dataclass

import numpy as np

from splitleak.attack import metrics


def score(originals, recons, groups=None, attacker_mean=None) -> dict:
    """Metrics overall and per group, beside the blank page and (if given) the mean image."""
    scores = metrics.per_image(originals, recons)
    baselines = {"blank_page": metrics.evaluate(originals, np.zeros_like(originals))}
    if attacker_mean is not None:
        mean = np.broadcast_to(attacker_mean, originals.shape).astype(np.float32)
        baselines["attacker_mean_image"] = metrics.evaluate(originals, mean)
    return {"n": int(len(originals)), "reconstruction": metrics.summarise(scores),
            "baselines": baselines,
            "per_group": {} if groups is None else metrics.per_group(scores, groups)}


def unscored(n: int) -> dict:
    """The keys of `score` for reconstructions without originals to compare with."""
    return {"n": int(n), "reconstruction": None, "baselines": None, "per_group": None}


def split_key(split: str, defense: str | None) -> str:
    """Where eval.json files a split's result: `split`, or `split`-defended through a defence."""
    return f"{split}-defended" if defense else split


@dataclass
class Evaluation:
    """One attack scored on one set of activations: eval.json[attack][split] = result."""

    attack: str  # "blackbox" or "whitebox"
    split: str  # "test" or "attacker" (with "-defended" through a defence), or "capture"
    result: dict  # JSON-able: the keys of `score` and what was evaluated, as eval.json holds it
    recons: np.ndarray
    originals: np.ndarray | None = None  # None: no true images to compare with
    activations: np.ndarray | None = None  # what the attack reconstructed from
    frames: list | None = None  # a capture's frames, one per reconstruction

    @property
    def name(self) -> str:
        """The prefix of its files: blackbox-test, whitebox-capture, …"""
        return f"{self.attack}-{self.split}"
