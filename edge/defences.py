"""What the device publishes: the TFLite mobile stage, then a chain of inference-time defences.

`Device` is the one place that computes it; the edge node, the attacker's queries, evaluation and
the demo all go through it. numpy only (the edge has no TensorFlow).

A chain is a comma-separated spec, applied left to right to each activation:
- `noise:gauss:SIGMA`: add N(0, SIGMA^2) to every value (activation units);
- `noise:laplace:B`: add Laplace(0, B) noise (Titcombe et al. 2021, "Practical defences against
  model inversion attacks for split neural networks");
- `quant:int8`: round to 255 symmetric levels of the frame's own largest magnitude.
With a defence the published activation is float32 (an int8 stage's output is dequantised first).
"""

from dataclasses import dataclass

import numpy as np

from splitleak.edge.runtime import MobileStage

SPECS = "noise:gauss:SIGMA, noise:laplace:B, quant:int8 (chained with commas)"


@dataclass(frozen=True)
class Noise:
    kind: str  # "gauss" or "laplace"
    scale: float

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        draw = rng.normal if self.kind == "gauss" else rng.laplace
        return x + draw(0.0, self.scale, x.shape).astype(np.float32)


@dataclass(frozen=True)
class QuantInt8:
    def __call__(self, x: np.ndarray, rng=None) -> np.ndarray:
        step = float(np.abs(x).max()) / 127 or 1.0
        return (np.round(x / step) * step).astype(np.float32)


def parse(spec: str | None) -> tuple:
    """The chain a spec names (empty for None or ""); ValueError naming what was wrong."""
    chain = []
    for part in filter(None, (spec or "").split(",")):
        fields = part.strip().split(":")
        if fields == ["quant", "int8"]:
            chain.append(QuantInt8())
        elif len(fields) == 3 and fields[0] == "noise" and fields[1] in ("gauss", "laplace"):
            try:
                scale = float(fields[2])
            except ValueError:
                scale = -1.0
            if not (np.isfinite(scale) and scale > 0):
                raise ValueError(f"defence '{part}': the noise scale must be a positive number")
            chain.append(Noise(fields[1], scale))
        else:
            raise ValueError(f"unknown defence '{part}' in '{spec}'; expected {SPECS}")
    return tuple(chain)


def describe(chain: tuple) -> str:
    """The spec of a chain ("" for none): what a node announces."""
    return ",".join("quant:int8" if isinstance(d, QuantInt8) else f"noise:{d.kind}:{d.scale:g}"
                    for d in chain)


class Device:
    """A mobile stage and a defence chain: what the device publishes for each image."""

    def __init__(self, stage, defence: str | None = None, seed: int | None = None):
        self.stage, self.chain = stage, parse(defence)
        self.spec = describe(self.chain)
        self.random = any(isinstance(d, Noise) for d in self.chain)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_model(cls, path, defence: str | None = None, seed: int | None = None,
                   threads: int = 1) -> "Device":
        """A device running the TFLite mobile stage at `path` (cloud/rundir.device: from a run)."""
        return cls(MobileStage(path, threads), defence, seed)

    @property
    def output_shape(self) -> tuple:
        return self.stage.output_shape

    def publish_raw(self, image: np.ndarray) -> tuple[np.ndarray, float, int]:
        """One image -> (activation as sent, scale, zero point) for a wire frame."""
        if not self.chain:
            return (self.stage.run_raw(image), *self.stage.output_quant)
        return self._defend(self.stage.run(image[None]))[0], 0.0, 0

    def run(self, images: np.ndarray) -> np.ndarray:
        """A batch of images -> the published activations as float32."""
        acts = self.stage.run(images)
        return self._defend(acts) if self.chain else acts

    def _defend(self, acts: np.ndarray) -> np.ndarray:
        out = []
        for act in acts:  # per frame, as the device sends them
            for defence in self.chain:
                act = defence(act, self.rng)
            out.append(act)
        return np.stack(out).astype(np.float32)
