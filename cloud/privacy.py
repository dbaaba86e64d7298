"""ε for DP-SGD as it was actually run: the examples trained on, the sampling used (dp-accounting).

Each DP-SGD step clips every example's gradient to norm C and adds Gaussian noise of standard
deviation z*C to their sum: a Gaussian mechanism with noise multiplier z, composed over the steps.
What each step sees depends on the sampling:
- `poisson`: every example joins every step independently with probability q = B/n (batch sizes
  vary around B), for ceil(E/q) steps. Privacy amplification by subsampling applies:
  PoissonSampledDpEvent, composed, read out by the RDP and the PLD accountant.
- `shuffle`: a shuffled pass in fixed batches of B, E times (what the seed and most code do). The
  Poisson figure is not a valid bound for it (Chua et al., "How private are DP-SGD
  implementations?", ICML 2024: shuffling can leak much more). What does hold: every example is
  in exactly one batch per epoch, so it goes through E Gaussian mechanisms, one per epoch, with no
  amplification. tensorflow-privacy prints this bound as "once per epoch"; it is far larger.

No TensorFlow here: `splitleak privacy epsilon` answers instantly.
"""

import math

import dp_accounting

from splitleak.cloud.config import SAMPLINGS

ACCOUNTANTS = ("rdp", "pld")


def check(n: int, batch: int, noise: float, epochs: float, delta: float) -> None:
    """Refuse settings for which ε is meaningless, in one line naming the setting."""
    if n < 1 or batch < 1 or batch > n:
        raise ValueError(f"expected 1 <= batch <= n, got batch {batch} and n {n}")
    if noise < 0:
        raise ValueError(f"the noise multiplier must be >= 0, got {noise}")
    if not epochs > 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if not 0 < delta <= 1 / n:
        raise ValueError(f"delta must be in (0, 1/n] = (0, {1 / n:.3g}] for n = {n}, got {delta}: "
                         "a larger delta allows releasing whole examples")


def steps(n: int, batch: int, epochs: float) -> int:
    """Optimizer steps: an epoch is ceil(n / B) steps, under either sampling."""
    return int(math.ceil(epochs * math.ceil(n / batch)))


def event(n: int, batch: int, noise: float, epochs: float, sampling: str):
    """The whole training run as one dp-accounting event, per example."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling '{sampling}'; expected one of {', '.join(SAMPLINGS)}")
    gaussian = dp_accounting.GaussianDpEvent(noise)
    if sampling == "shuffle":  # in one batch per epoch: no amplification
        return dp_accounting.SelfComposedDpEvent(gaussian, int(math.ceil(epochs)))
    sampled = dp_accounting.PoissonSampledDpEvent(batch / n, gaussian)
    return dp_accounting.SelfComposedDpEvent(sampled, steps(n, batch, epochs))


def epsilon(n: int, batch: int, noise: float, epochs: float, delta: float,
            sampling: str = "poisson", accountant: str = "rdp") -> float:
    """ε at δ for add-or-remove-one-example adjacency, covering every checkpoint (inf without
    noise)."""
    check(n, batch, noise, epochs, delta)
    if noise == 0:
        return math.inf
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"unknown accountant '{accountant}'; "
                         f"expected one of {', '.join(ACCOUNTANTS)}")
    acc = dp_accounting.rdp.RdpAccountant() if accountant == "rdp" \
        else dp_accounting.pld.PLDAccountant()
    return float(acc.compose(event(n, batch, noise, epochs, sampling)).get_epsilon(delta))


def statement(n: int, batch: int, noise: float, epochs: float, delta: float,
              sampling: str = "poisson") -> dict:
    """Everything metrics.json records about the guarantee."""
    return {"n": n, "batch": batch, "noise_multiplier": noise, "epochs": epochs, "delta": delta,
            "sampling": sampling, "steps": steps(n, batch, epochs),
            "epsilon": {a: epsilon(n, batch, noise, epochs, delta, sampling, a)
                        for a in ACCOUNTANTS}}


def classic_rdp_epsilon(n: int, batch: int, noise: float, epochs: float, delta: float) -> float:
    """Poisson ε by RDP with the older conversion, eps = min over orders a of RDP(a) +
    log(1/delta)/(a - 1) (Mironov 2017), on the orders tensorflow-privacy used until 2022: how
    the seed's figures were made. Today's conversion is tighter for the same RDP curve."""
    import numpy as np

    check(n, batch, noise, epochs, delta)
    orders = np.array([1 + x / 10 for x in range(1, 100)] + list(range(12, 64)), float)
    acc = dp_accounting.rdp.RdpAccountant(list(orders))
    acc.compose(event(n, batch, noise, epochs, "poisson"))
    return float(np.min(acc._rdp + np.log(1 / delta) / (orders - 1)))  # noqa: SLF001 (its RDP curve)


def seed_table() -> list[dict]:
    """The seed's three DP-SGD runs (cloud/config.SEED_DP): its ε beside ours, per noise
    multiplier, for the older RDP conversion, both accountants, both counts of n and both
    samplings."""
    from splitleak.cloud.config import SEED_DP as SEED

    rows = []
    for noise, theirs in SEED["epsilon"].items():
        common = (SEED["batch"], noise, SEED["epochs"], SEED["delta"])
        row = {"noise": noise, "seed": theirs,
               f"classic_rdp_{SEED['n_passed']}": classic_rdp_epsilon(SEED["n_passed"], *common)}
        for n in (SEED["n_passed"], SEED["n_trained"]):
            for acc in ACCOUNTANTS:
                row[f"poisson_{acc}_{n}"] = epsilon(n, *common, "poisson", acc)
        for acc in ACCOUNTANTS:
            row[f"shuffle_{acc}_{SEED['n_trained']}"] = epsilon(SEED["n_trained"], *common,
                                                                "shuffle", acc)
        rows.append(row)
    return rows
