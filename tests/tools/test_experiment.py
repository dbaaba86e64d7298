"""The experiment sweep: presets, resuming, refusals, and what it writes (rows stubbed: the
training and attacks it runs are tested where they live; one real setting runs end to end)."""

import json
from dataclasses import asdict, replace

import pytest

from splitleak.tools import cli, experiment


def _row(s: experiment.Setting, top1: float) -> dict:
    scores = {"n": 1000, "mse": 0.05, "ssim": 0.6, "top1": top1, "top5": top1, "median_rank": 2.0,
              "chance_top1": 0.001, "mean_image_mse": 0.056, "mean_image_top1": 0.001}
    return {"key": s.key(), "setting": asdict(s), "target": "t", "val_accuracy": 0.9,
            "accuracy": 0.88, "activation_std": 1.5, "dcor": 0.9,
            "epsilon": {"rdp": 4.0, "pld": 3.5} if s.dp else None, "naive": scores,
            "adaptive": scores | {"top1": top1 + 0.1} if s.defense else None,
            "whitebox": scores | {"n": 64}, "grid": f"{s.key()}.png"}


def test_presets_name_distinct_settings_and_all_is_their_union():
    keys = {p: [s.key() for s in experiment.preset(p)] for p in experiment.PRESETS}
    assert all(len(k) == len(set(k)) for k in keys.values())
    assert set(keys["all"]) == set(keys["seed-dp"]) | set(keys["defences"]) | set(keys["depth"])
    assert {s.split_after for s in experiment.preset("defences")} == {experiment.DEFENCE_SPLIT}
    dp = [s for s in experiment.preset("seed-dp") if s.dp]
    assert sorted(s.noise_multiplier for s in dp) == sorted(experiment.SEED_DP["epsilon"])
    # settings that differ only in their edge defence share one target
    defended = experiment.preset("defences")[:3]
    assert len({s.target_key() for s in defended}) == 1 < len({s.key() for s in defended})


def test_the_estimate_counts_only_what_is_left():
    settings = experiment.preset("defences")
    full = experiment.estimate_seconds(settings, set())
    assert 0 < experiment.estimate_seconds(settings, {settings[0].key()}) < full
    assert experiment.estimate_seconds(settings, {s.key() for s in settings}) == 0


def test_the_estimate_skips_targets_and_decoders_already_saved(tmp_path):
    s = experiment.preset("defences")[1]  # an edge defence: naive and adaptive decoders
    before = experiment.estimate_seconds([s], set(), tmp_path)
    for folder in (experiment.target_dir(tmp_path, s), experiment.decoder_dir(tmp_path, s, "")):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    after = experiment.estimate_seconds([s], set(), tmp_path)
    assert before - after == pytest.approx(experiment.SECONDS["train"]
                                           + experiment.SECONDS["decoder"])


def test_an_interrupted_sweep_resumes_where_it_stopped(monkeypatch, tmp_path, omniglot_dir):
    calls = []

    def fake(s, proto, out):
        if len(calls) == 2 and not (out / "resumed").exists():
            raise KeyboardInterrupt  # stopped during the third setting
        calls.append(s.name)
        return _row(s, 0.5)

    monkeypatch.setattr(experiment, "run_setting", fake)
    argv = ["experiment", "sweep", "--preset", "seed-dp", "--out", str(tmp_path),
            "--omniglot-dir", str(omniglot_dir)]
    assert cli.main(argv) == 130  # interrupted
    saved = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert len(saved) == 2
    (tmp_path / "resumed").touch()
    assert cli.main(argv) == 0
    assert calls == [s.name for s in experiment.preset("seed-dp")]  # each ran once
    for name in ("results.csv", "results.md", "privacy-utility.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 100
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + len(calls)
    assert "DP z=0.7" in (tmp_path / "report.html").read_text()
    table = (tmp_path / "results.md").read_text()  # the seed's ε and accuracy beside ours
    assert "| 4, 0.37 |" in table and "| 84.7, 0.56 |" in table


def test_bad_config_and_a_foreign_output_folder_are_refused(tmp_path, omniglot_dir, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 2, "colour": "red"}))
    base = ["experiment", "sweep", "--omniglot-dir", str(omniglot_dir)]
    assert cli.main([*base, "--preset", "depth", "--config", str(config)]) == 2
    assert "unknown setting key(s) ['colour']" in capsys.readouterr().err
    other = replace(experiment.Setting("elsewhere"), epochs=3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").write_text(json.dumps(
        {"preset": "depth", "settings": {other.key(): _row(other, 0.1)}}))
    assert cli.main([*base, "--preset", "depth", "--out", str(tmp_path / "out")]) == 2
    assert "holds 1 setting(s) of another sweep" in capsys.readouterr().err


@pytest.mark.slow
def test_one_defended_setting_end_to_end(lite, tmp_path):
    s = replace(experiment.Setting("noise", split_after=4, defense="noise:gauss:0.5"), epochs=1,
                attack_epochs=1, whitebox_limit=3)
    row = experiment.run_setting(s, lite, tmp_path)
    assert row["key"] == s.key() and 0 < row["val_accuracy"] <= 1 and 0 < row["accuracy"] <= 1
    assert row["activation_std"] > 0 and 0 < row["dcor"] <= 1
    assert row["naive"]["n"] == row["adaptive"]["n"] == len(lite.test)
    assert row["whitebox"]["n"] == 3 and (tmp_path / "grids" / row["grid"]).is_file()
    assert len(list((tmp_path / "attacks").iterdir())) == 2  # naive and adaptive decoders


def test_limit_and_seed_reach_training_and_leave_older_keys_unchanged():
    s = experiment.Setting("x")
    older = {k: v for k, v in asdict(s).items() if k not in ("limit", "seed")}
    assert s.key() == experiment._hash(older)  # results.json written before these fields match
    lab = replace(s, limit=100, seed=7)
    assert lab.key() != s.key() and lab.target_key() != s.target_key()
    assert (lab.train_config().limit, lab.train_config().seed, lab.decoder_config().seed) == (
        100, 7, 7)
    full = experiment.estimate_seconds([s], set())
    assert experiment.estimate_seconds([lab], set()) < full
    assert experiment.estimate_seconds([replace(s, attack_epochs=10)], set()) < full
    assert {x.split_after for x in experiment.preset("lab")} == {experiment.DEFENCE_SPLIT}
