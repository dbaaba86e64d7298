import pytest

from splitleak.tools.experiments import pareto


def row(name, k, seed, accuracy, naive, adaptive=None, **setting):
    out = {"setting": {"name": name, "split_after": k, "seed": seed, **setting},
           "accuracy": accuracy, "naive": {"top1": naive, "chance_top1": 0.001}}
    return out | ({"adaptive": {"top1": adaptive}} if adaptive is not None else {})


ROWS = [row("none", 2, s, 0.90 + s / 100, 0.99) for s in (1, 2, 3)] + [
    row("noise", 2, s, 0.88, 0.01, 0.30, defense="noise:gauss:4") for s in (1, 2, 3)] + [
    row("dp", 2, s, 0.60, 0.001, dp=True) for s in (1, 2, 3)] + [
    row("nopeek", 2, s, 0.70, 0.50, nopeek=20.0) for s in (1, 2, 3)]


def test_points_are_seed_means_of_the_strongest_attacker():
    found = {p.name: p for p in pareto.points(ROWS)}
    assert found["noise"].top1.mean == pytest.approx(0.30)  # adaptive beat naive
    assert found["none"].accuracy.mean == pytest.approx(0.92) and found["none"].accuracy.n == 3
    assert found["none"].accuracy.low < 0.92 < found["none"].accuracy.high
    assert not found["none"].defended and found["dp"].defended


def test_the_front_drops_what_another_setting_beats_on_both():
    names = [p.name for p in pareto.front(pareto.points(ROWS))]
    assert names == ["dp", "noise", "none"]  # NoPeek: lower accuracy and more identified than noise


def test_the_answer_names_the_closest_settings_when_none_reaches_both():
    text = pareto.sentence(pareto.points(ROWS))
    assert text.startswith("No setting reaches both")
    assert "best top-1 that keeps accuracy is noise: accuracy 0.880, top-1 0.300" in text
    assert "best accuracy that stops identification is dp: accuracy 0.600" in text
    good = ROWS + [row("good", 2, s, 0.90, 0.0015, bottleneck=8) for s in (1, 2, 3)]
    assert pareto.sentence(pareto.points(good)).startswith("good: accuracy 0.900, top-1 0.002")
    assert pareto.answer(pareto.points(good)).both[0].name == "good"


def test_the_plot_is_written(tmp_path):
    pareto.plot(pareto.points(ROWS + [row("zero", 3, 1, 0.5, 0.0, dp=True)]), tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_the_section_answers_first_and_marks_the_front():
    rows = [r | {"snr": 0.25} if r["setting"]["name"] == "noise" else r for r in ROWS]
    lines = pareto.section(rows)
    assert lines[0] == "## The frontier" and lines[2].startswith("No setting reaches both")
    noise = next(line for line in lines if line.startswith("| noise |"))
    assert "| 0.25 |" in noise and noise.endswith("| yes |")
    assert next(line for line in lines if line.startswith("| nopeek |")).endswith("|  |")
    assert pareto.section([]) == []
