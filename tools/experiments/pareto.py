"""The privacy-utility frontier of a results folder's rows: per setting, the deployment's accuracy
against the strongest black-box attacker's top-1 identification of the test images (naive or
adaptive, whichever identified more), each a mean over seeds with its Student-t interval; the
settings no other beats on both (the Pareto front); and the question the frontier answers: which
settings keep accuracy within `KEEP` of the undefended model at the same cut and bring top-1 to
at most `TIMES_CHANCE` x chance?
"""

from dataclasses import dataclass

from splitleak.tools.experiments.settings import unseeded_key
from splitleak.tools.experiments.stats import Interval, t_interval

PLOT = "frontier.png"  # a frontier folder's plot, beside the generic one
KEEP = 0.05  # accuracy points a defence may cost
TIMES_CHANCE = 2  # top-1 at most this many times chance (1/N over N test images)


@dataclass(frozen=True)
class Point:
    name: str
    split_after: int
    defended: bool
    accuracy: Interval
    top1: Interval
    chance: float  # 1/N of the test images ranked


def strongest(row: dict) -> float:
    """The black-box attackers' best top-1 on the row's test images."""
    return max(row[kind]["top1"] for kind in ("naive", "adaptive") if row.get(kind))


def defended(setting: dict) -> bool:
    keys = ("dp", "nopeek", "defense", "noise", "adversarial", "bottleneck")
    return any(setting.get(k) for k in keys)


def points(rows: list[dict], order: list[str] | None = None) -> list[Point]:
    """One point per setting (its rows are its seeds), in the order of the setting names in
    `order` (a results folder's config), else the rows'."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(unseeded_key(row["setting"]), []).append(row)
    if order:
        rank = {name: i for i, name in enumerate(order)}
        groups = dict(sorted(groups.items(),
                             key=lambda kv: rank.get(kv[1][0]["setting"]["name"], len(rank))))
    return [Point(rs[0]["setting"]["name"], rs[0]["setting"]["split_after"],
                  defended(rs[0]["setting"]), t_interval([r["accuracy"] for r in rs]),
                  t_interval([strongest(r) for r in rs]), rs[0]["naive"]["chance_top1"])
            for rs in groups.values()]


def front(found: list[Point]) -> list[Point]:
    """The points no other point beats on both accuracy (higher) and top-1 (lower), by top-1."""
    def beaten(p: Point) -> bool:
        return any(q.accuracy.mean >= p.accuracy.mean and q.top1.mean <= p.top1.mean
                   and (q.accuracy.mean, q.top1.mean) != (p.accuracy.mean, p.top1.mean)
                   for q in found)
    return sorted((p for p in found if not beaten(p)), key=lambda p: p.top1.mean)


@dataclass(frozen=True)
class Answer:
    """The settings that keep accuracy and stop identification (`both`); when there are none,
    the best top-1 among those that keep accuracy and the best accuracy among those that stop
    identification (either may be None)."""

    both: list[Point]
    keeps: Point | None
    stops: Point | None


def answer(found: list[Point]) -> Answer:
    """Judge every defended point against the undefended point of its cut (means over seeds)."""
    base = {p.split_after: p.accuracy.mean for p in found if not p.defended}
    judged = [p for p in found if p.defended and p.split_after in base]
    keeps = [p for p in judged if p.accuracy.mean >= base[p.split_after] - KEEP]
    stops = [p for p in judged if p.top1.mean <= TIMES_CHANCE * p.chance]
    both = [p for p in keeps if p in stops]
    return Answer(sorted(both, key=lambda p: p.top1.mean),
                  min(keeps, key=lambda p: p.top1.mean, default=None),
                  max(stops, key=lambda p: p.accuracy.mean, default=None))


def sentence(found: list[Point]) -> str:
    """The answer in one sentence, with its numbers."""
    a = answer(found)
    goal = (f"within {KEEP * 100:g} points of the undefended accuracy and top-1 at most "
            f"{TIMES_CHANCE}x chance")
    if a.both:
        return f"{_said(a.both)} reach{'es' if len(a.both) == 1 else ''} both ({goal})."
    close = [f"the best top-1 that keeps accuracy is {_said([a.keeps])}" if a.keeps else
             "no defence keeps accuracy",
             f"the best accuracy that stops identification is {_said([a.stops])}" if a.stops
             else "no defence stops identification"]
    return f"No setting reaches both ({goal}): {close[0]}; {close[1]}."


def _said(found: list[Point]) -> str:
    return "; ".join(f"{p.name}: accuracy {p.accuracy.mean:.3f}, top-1 {p.top1.mean:.3f} "
                     f"(chance {p.chance:.3f}, {p.accuracy.n} seed{'s' if p.accuracy.n > 1 else ''})"
                     for p in found)


def section(rows: list[dict], order: list[str] | None = None) -> list[str]:
    """The frontier's part of a results page: the answer, then every setting's point (in
    `order`, as `points`), marking the Pareto front, with what the defended rows record about
    their defence."""
    found = points(rows, order)
    if not found:
        return []
    edge = {p.name for p in front(found)}
    extra: dict[str, dict] = {}
    for row in rows:
        extra.setdefault(row["setting"]["name"], {"snr": [], "adversary": []})
        for key, field in (("snr", "snr"), ("adversary", "training_adversary_mse")):
            if row.get(field) is not None:
                extra[row["setting"]["name"]][key].append(row[field])
    lines = ["## The frontier", "", sentence(found), "",
             "| setting | n | accuracy | strongest top-1 | SNR | training adversary's MSE | front |",
             "|---|---|---|---|---|---|---|"]
    for p in found:
        got = extra.get(p.name, {"snr": [], "adversary": []})
        lines.append(f"| {p.name} | {p.accuracy.n} | {_iv(p.accuracy)} | {_iv(p.top1)} | "
                     f"{_mean(got['snr'], 2)} | {_mean(got['adversary'], 4)} | "
                     f"{'yes' if p.name in edge else ''} |")
    chance = found[0].chance
    lines += [f"| chance (1/{round(1 / chance):,}) | | | {chance:.3f} | | | |", "",
              "Strongest top-1: the naive or the adaptive black box, whichever identified more "
              "of the test images (the white box, on fewer images, is in the tables below). "
              "SNR: the undefended activation's std over the edge noise's scale, on the "
              "validation images. The training adversary's MSE is for comparison only: every "
              "defence is scored by attackers trained after the model was frozen. Front: no "
              "other setting has both a higher accuracy and a lower top-1.", ""]
    return lines


def _iv(i: Interval) -> str:
    if i.low is None:
        return f"{i.mean:.3f}"
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _mean(values: list, digits: int) -> str:
    return f"{sum(values) / len(values):.{digits}f}" if values else "–"


def plot(found: list[Point], path) -> None:
    """Accuracy against top-1 (log scale; a top-1 of 0 is drawn at a tenth of chance), seed
    intervals as error bars, chance and 2x chance marked, each cut's undefended accuracy less
    KEEP dotted, the Pareto front drawn."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = {2: "tab:blue", 3: "tab:orange", 1: "tab:green", 4: "tab:red"}
    chance = found[0].chance if found else 0.001

    def x(p: Point) -> float:
        return max(p.top1.mean, chance / 10)

    for p in found:
        c = colours.get(p.split_after, "grey")
        ax.errorbar(x(p), p.accuracy.mean, fmt="s" if not p.defended else "o", color=c,
                    xerr=_err(p.top1), yerr=_err(p.accuracy), ms=5, capsize=2, alpha=0.85)
        if not p.defended:
            ax.axhline(p.accuracy.mean - KEEP, color=c, ls=":", lw=1)
    edge = front(found)
    ax.plot([x(p) for p in edge], [p.accuracy.mean for p in edge], "k-", lw=1,
            label="Pareto front")
    ax.axvline(chance, color="grey", lw=1, label=f"chance ({chance:g})")
    ax.axvline(TIMES_CHANCE * chance, color="grey", ls="--", lw=1, label=f"{TIMES_CHANCE}x chance")
    for k, c in sorted(colours.items()):
        if any(p.split_after == k for p in found):
            ax.plot([], [], "o", color=c, label=f"K = {k} (square: undefended; dotted: "
                    f"{KEEP * 100:g} points below it)")
    ax.set_xscale("log")
    ax.set_xlabel("strongest black-box attacker's top-1 identification (log)")
    ax.set_ylabel("deployment accuracy")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _err(i: Interval):
    if i.low is None:
        return None
    return [[max(i.mean - i.low, 0.0)], [max(i.high - i.mean, 0.0)]]
