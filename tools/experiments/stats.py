"""The intervals the result tables state: Student's t across seeds, Wilson's score interval over
test images. Pure Python (math, statistics): no SciPy in the install.

t_interval: mean ± t(1 - α/2, n - 1) · s / √n, s the sample standard deviation (n - 1 in its
denominator); no interval for n < 2. The t quantile is found by bisection on the t distribution's
CDF, written with the regularised incomplete beta function (its continued fraction, as in Press et
al., Numerical Recipes, 3rd ed., §6.4).

wilson: the score interval for a binomial proportion (E. B. Wilson, 1927, "Probable inference, the
law of succession, and statistical inference", JASA 22(158), 209-212), which stays inside [0, 1]
and keeps its coverage near 0 and 1, where the normal (Wald) interval does not.
"""

import math
import statistics
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over n values and its interval (low, high are None for n < 2)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


def t_interval(values, level: float = LEVEL) -> Interval:
    """The mean of `values` and its Student-t interval with n - 1 degrees of freedom."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n)
    half = t_quantile(0.5 + level / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def wilson(hits: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval for hits successes in trials Bernoulli trials."""
    if trials <= 0 or not 0 <= hits <= trials:
        raise ValueError(f"need 0 <= hits <= trials and trials > 0, got {hits} of {trials}")
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    p, z2 = hits / trials, z * z / trials
    centre = (p + z2 / 2) / (1 + z2)
    half = z / (1 + z2) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (0.5 <= p < 1) of Student's t with df degrees of freedom."""
    if not 0.5 <= p < 1 or df < 1:
        raise ValueError(f"need 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):  # to double precision: the bracket halves each step
        mid = (low + high) / 2
        if mid in (low, high):
            break
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    out = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            out *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return out
