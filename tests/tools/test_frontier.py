from dataclasses import replace

import pytest

from splitleak.tools.experiments import frontier, settings
from splitleak.tools.experiments.frontier import DefendedSetting
from splitleak.tools.experiments.job import Setting


def test_a_setting_without_a_trained_defence_keeps_the_plain_keys():
    plain = Setting("K=2", split_after=2, nopeek=5.0)
    same = DefendedSetting("K=2", split_after=2, nopeek=5.0)
    assert same.key() == plain.key() and same.target_key() == plain.target_key()
    untrained = replace(same, noise="gauss:4", noise_trained=False)
    assert untrained.target_key() == plain.target_key()  # the edge adds it: the same target
    assert untrained.key() != plain.key()
    keys = {replace(same, noise="gauss:4", noise_trained=True).target_key(),
            replace(same, adversarial=3.0, bottleneck=8).target_key(),
            replace(same, bottleneck=8).target_key(), plain.target_key()}
    assert len(keys) == 4


def test_edge_noise_is_k_times_the_targets_std():
    s = DefendedSetting("x", noise="laplace:8")
    assert frontier.edge_defense(s, 0.25) == "noise:laplace:2"
    assert frontier.edge_defense(DefendedSetting("x"), 0.25) == ""


def test_the_preset_covers_every_defence_at_both_cuts_once():
    chosen = settings.preset("frontier")
    assert len({s.name for s in chosen}) == len({s.key() for s in chosen}) == len(chosen)
    assert {s.split_after for s in chosen} == {2, 3}
    k2 = [s for s in chosen if s.split_after == 2]
    assert {s.nopeek for s in k2} >= {0.5, 2, 5, 20, 50}
    assert {s.noise for s in k2 if s.noise_trained} == {s.noise for s in k2 if s.noise} - {None}
    assert {s.noise_multiplier for s in k2 if s.dp} == {0.7, 0.5, 0.3}
    assert any(s.adversarial and s.noise for s in k2) and any(s.noise and s.nopeek for s in k2)
    assert all(s.whitebox_limit == settings.FRONTIER_WHITEBOX for s in chosen)
    assert all(isinstance(a, float) for s in chosen for a in (s.nopeek, s.adversarial) if a)


@pytest.mark.slow
def test_a_defended_job_is_attacked_by_fresh_decoders_at_the_trained_snr(tmp_path, lite):
    s = DefendedSetting("tiny", split_after=2, epochs=3, attack_epochs=1, limit=64,
                        whitebox_limit=2, noise="gauss:2", noise_trained=True, adversarial=1.0,
                        bottleneck=4)
    row, lines = frontier.run(s, lite, tmp_path)
    assert row["key"] == s.key() and row["setting"]["noise"] == "gauss:2"
    assert row["edge_defense"] == frontier.edge_defense(s, row["train_activation_std"])
    assert row["snr"] == pytest.approx(0.5, rel=0.3)  # 1/K, on validation activations
    assert row["activation"] == [13, 13, 4]
    assert row["training_adversary_mse"] > 0 and {"naive", "adaptive", "whitebox"} <= set(row)
    assert "target" in row["seconds"] and [label for label, _ in lines][0] == "original"


def test_a_frontier_sweep_records_its_path_and_reports_the_front(monkeypatch, tmp_path):
    """Rows stubbed (a job's training and attacks are tested above): the sweep sends defended
    settings to the frontier's job, records the defended modules on its path, and its page
    answers the question with the front drawn."""
    import json

    import numpy as np

    from splitleak.cloud import data
    from splitleak.tools import cli
    from splitleak.tools.experiments import job, pareto, provenance, results
    from tests.tools.test_experiment import _row

    sent = {}

    def fake(runner):
        def run(s, proto, models):
            sent[s.key()] = runner
            top1 = 0.001 if s.dp else 0.9 / (1 + (s.adversarial or 0) + (s.nopeek or 0))
            return _row(s, top1) | {"classes": 3, "seconds": {}, "accuracy": 0.9 - (
                0.3 if s.dp else 0.0), "snr": 0.25 if s.noise else None}, [
                ("original", np.zeros((1, 8, 8, 1)))]
        return run

    monkeypatch.setattr(job, "run", fake("job"))
    monkeypatch.setattr(frontier, "run", fake("frontier"))
    monkeypatch.setattr(data, "load_protocol", lambda *a, **k: None)
    folder = tmp_path / "results"
    assert cli.main(["experiment", "sweep", "--preset", "frontier", "--out", str(tmp_path / "w"),
                     "--results", str(folder)]) == 0
    assert set(sent.values()) == {"frontier"} and len(sent) == len(settings.preset("frontier"))
    cfg = results.read_config(folder)
    assert set(provenance.DEFENDED) <= set(cfg["code"]["files"]) and cfg["seeds"] == [1]
    assert results.stale(folder) is None
    page = (folder / "results.md").read_text()
    assert "## The frontier" in page and "No setting reaches both" in page
    assert (folder / pareto.PLOT).stat().st_size > 10_000
    rows = [json.loads(p.read_text()) for p in (folder / "rows").glob("*.json")]
    assert {r["setting"]["name"] for r in rows} == {s.name for s in settings.preset("frontier")}


def test_a_frontier_folder_without_rows_shows_its_plot_pending(tmp_path):
    """Opened before any row (as the committed folder is between sessions): the page links a
    frontier plot that says it waits, and an older run's plot does not survive."""
    from dataclasses import asdict

    from splitleak.tools.experiments import pareto, report, results

    folder = tmp_path / "frontier"
    chosen = settings.preset("frontier")
    results.open_folder(folder, results.config(
        "frontier", settings.recipe(chosen), "lite", [asdict(s) for s in chosen], [1], None,
        folder, None, settings.code_path(chosen)))
    (folder / pareto.PLOT).write_bytes(b"an older run's plot")
    page = report.write(folder)
    assert folder / pareto.PLOT in page.written
    assert (folder / pareto.PLOT).read_bytes().startswith(b"\x89PNG")
    assert "## The frontier" not in page.text and "Rows: 0 of 33" in page.text
