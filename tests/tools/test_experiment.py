"""The experiment sweep: presets, resuming, refusals, and what it writes (rows stubbed: the
training and attacks it runs are tested where they live; one real setting runs end to end)."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.tools import cli
from splitleak.tools.experiments import job, results, settings, tables

# the keys of results.json written before the engine was split: resuming must still find them
KEYS = {"non-private": "4324b9cfc83c", "DP z=0.7": "196f2a3ddc7f", "none": "3ac001648f38",
        "noise:gauss:4": "12725e602ba2", "NoPeek α=5": "3bd8bafe42ba", "K=1": "84f8c28cd4c9",
        "K=4": "99b918a71188", "DP-SGD z=0.7": "d9da61c5be9d"}


def _scores(top1: float, n: int = 1000) -> dict:
    return {"n": n, "mse": 0.05, "ssim": 0.6, "top1": top1, "top5": top1, "median_rank": 2.0,
            "chance_top1": 1 / n, "mean_image_mse": 0.056, "mean_image_ssim": 0.3,
            "mean_image_top1": 1 / n, "blank_page_mse": 0.07, "blank_page_ssim": 0.1,
            "blank_page_top1": 1 / n}


def _row(s: job.Setting, top1: float) -> dict:
    shapes = {1: [33, 33, 32], 2: [13, 13, 32], 3: [4, 4, 32], 4: [1, 1, 32]}
    return {"key": s.key(), "setting": asdict(s), "target": "t", "val_accuracy": 0.9,
            "accuracy": 0.88, "activation_std": 1.5, "dcor": 0.9,
            "epsilon": {"rdp": 4.0, "pld": 3.5} if s.dp else None,
            "activation": shapes[s.split_after],
            "bytes_per_frame": 4 * shapes[s.split_after][0] ** 2 * 32 + 50,
            "naive": _scores(top1), "adaptive": _scores(top1 + 0.1) if s.defense else None,
            "blackbox_subset": _scores(top1 / 2, 64), "whitebox": _scores(top1, 64),
            "grid": f"{s.key()}.png"}


def test_presets_name_distinct_settings_and_all_is_their_union():
    keys = {p: [s.key() for s in settings.preset(p)] for p in settings.PRESETS}
    assert all(len(k) == len(set(k)) for k in keys.values())
    assert set(keys["all"]) == set().union(*(keys[p] for p in ("seed-dp", "defences", "depth",
                                                                "attack")))
    # the attack preset's default decoder is depth's K = 4 attacker: one models folder trains it
    # once; the seed's decoder and the untimed runs are decoders of their own on the same target
    k4, attack = settings.preset("depth")[3], settings.preset("attack")
    assert {s.target_key() for s in attack} == {k4.target_key()}
    folders = [job.decoder_dir(Path("m"), s, "") for s in attack]
    assert folders[0] == job.decoder_dir(Path("m"), k4, "") and len(set(folders)) == 4
    assert (attack[2].decoder_config().arch, attack[3].decoder_config().patience) == ("seed", 0)
    assert {s.split_after for s in settings.preset("defences")} == {settings.DEFENCE_SPLIT}
    dp = [s for s in settings.preset("seed-dp") if s.dp]
    assert sorted(s.noise_multiplier for s in dp) == sorted(settings.SEED_DP["epsilon"])
    # settings that differ only in their edge defence share one target
    defended = settings.preset("defences")[:3]
    assert len({s.target_key() for s in defended}) == 1 < len({s.key() for s in defended})


def test_existing_results_keep_their_keys():
    found = {s.name: s.key() for p in settings.PRESETS for s in settings.preset(p)}
    assert {name: found[name] for name in KEYS} == KEYS


def test_every_preset_trains_one_network_and_says_which():
    for p in settings.PRESETS:
        said = settings.recipe(settings.preset(p))
        assert said.startswith("target GroupNorm, no dropout, 20 epochs; decoders 40 epochs")
    lab = [replace(s, limit=500, epochs=8) for s in settings.preset("lab")]
    assert "8 epochs, first 500 images" in settings.recipe(lab)
    mixed = [job.Setting("a"), job.Setting("b", norm="batch", dropout=0.2)]
    with pytest.raises(ValueError, match="2 different networks"):
        settings.recipe(mixed)


def test_the_estimate_counts_only_what_is_left():
    todo = settings.preset("defences")
    full = settings.estimate_seconds(todo, set())
    assert 0 < settings.estimate_seconds(todo, {todo[0].key()}) < full
    assert settings.estimate_seconds(todo, {s.key() for s in todo}) == 0


def test_the_estimate_skips_targets_and_decoders_already_saved(tmp_path):
    s = settings.preset("defences")[1]  # an edge defence: naive and adaptive decoders
    before = settings.estimate_seconds([s], set(), tmp_path)
    for folder in (job.target_dir(tmp_path, s), job.decoder_dir(tmp_path, s, "")):
        folder.mkdir(parents=True)
        (folder / rundir.MANIFEST).write_text("{}")
    after = settings.estimate_seconds([s], set(), tmp_path)
    assert before - after == pytest.approx(settings.SECONDS["train"]
                                           + settings.SECONDS["decoder"][s.split_after])


def test_an_interrupted_sweep_resumes_where_it_stopped(monkeypatch, tmp_path, omniglot_dir,
                                                        capsys):
    calls = []

    def fake(s, proto, models):
        if len(calls) == 2 and not (models / "resumed").exists():
            raise KeyboardInterrupt  # stopped during the third job
        calls.append((s.name, s.seed))
        return _row(s, 0.5) | {"seconds": {"target": 1.0}}, [("original", np.zeros((2, 8, 8, 1)))]

    monkeypatch.setattr(job, "run", fake)
    argv = ["experiment", "sweep", "--preset", "seed-dp", "--seeds", "1", "2", "--out",
            str(tmp_path), "--omniglot-dir", str(omniglot_dir)]
    assert cli.main(argv) == 130  # interrupted
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["settings"]) == 2 == len(list((tmp_path / "results" / "rows").iterdir()))
    assert saved["recipe"] == settings.recipe(settings.preset("seed-dp"))
    (tmp_path / "resumed").touch()
    capsys.readouterr()
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"network: {saved['recipe']}" in printed and "8 jobs, 2 already done" in printed
    assert calls == [(s.name, seed) for seed in (1, 2) for s in settings.preset("seed-dp")]  # seed-major
    for name in ("results.csv", "results.md", "privacy-utility.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 100
    assert (tmp_path / "results" / "results.md").read_text() == (tmp_path / "results.md").read_text()
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + len(calls)
    report = (tmp_path / "report.html").read_text()
    assert "DP z=0.7 (K=4), seed 2" in report and f"Network: {saved['recipe']}" in report
    assert "<b>0.500</b> (of 1,000)" in report
    table = (tmp_path / "results.md").read_text()  # the seed's ε and accuracy beside ours
    assert table.startswith("# splitleak experiment sweep --preset seed-dp\n")
    assert f"Network: {saved['recipe']}." in table and "Rows: 8 of 8 (4 settings × 2 seeds)." in table
    assert "| 4, 0.37 |" in table and "| 84.7, 0.56 |" in table
    assert "adaptive black box" not in table and "bytes/frame" not in table  # nothing to show
    row = json.loads(next((tmp_path / "results" / "rows").iterdir()).read_text())
    assert set(row["provenance"]) >= {"commit", "dirty", "code_hash", "versions", "machine", "date",
                                      "seconds", "shard", "steps"}
    assert row["provenance"]["steps"] == {"target": 1.0} and "seconds" not in row


def test_the_table_shows_every_attack_and_reads_old_rows():
    s = settings.preset("defences")[1]
    row = _row(s, 0.5)
    old = {k: v for k, v in _row(settings.preset("defences")[0], 0.9).items()
           if k not in ("activation", "bytes_per_frame", "blackbox_subset")}
    cols = tables.columns([old, row])  # report.html's table
    lines = ["| " + " | ".join(title for title, _ in cols) + " |", ""]
    lines += ["| " + " | ".join(f(r) for _, f in cols) + " |" for r in (old, row)]
    lines += [line for note in tables.notes([old, row]) for line in ("", note)]
    head = lines[0].split(" | ")
    assert head[0] == "| setting" and all(t in lines[0] for k, t in tables.ATTACKS.items()
                                          if k != "whitebox_blank")  # no row has it
    assert "blank start" not in lines[0]
    assert lines[2].startswith("| none (K=2) | 0.880 | ∞ | 0.90 | ")
    assert lines[2].count("| – ") == 2  # adaptive, and the evaluation old rows lack
    assert "**0.600** (of 1,000)" in lines[3] and "**0.250** (of 64)" in lines[3]
    assert all(line.count("|") == lines[0].count("|") for line in lines[2:4])
    assert "scale a noise σ acts on: K=2: 1.50" in lines[5]
    assert "of the 1,000 test images, has MSE 0.0560" in lines[7]


def test_bad_config_and_a_foreign_results_folder_are_refused(tmp_path, omniglot_dir, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 2, "colour": "red"}))
    base = ["experiment", "sweep", "--omniglot-dir", str(omniglot_dir)]
    assert cli.main([*base, "--preset", "depth", "--config", str(config)]) == 2
    assert "unknown setting key(s) ['colour']" in capsys.readouterr().err
    folder = tmp_path / "out" / "results"
    folder.mkdir(parents=True)
    path = settings.code_path(settings.preset("depth"))
    other = results.config("depth", "r", "lite", [asdict(replace(job.Setting("x"), epochs=3))],
                           [1], None, folder, files=path)
    (folder / results.CONFIG).write_text(json.dumps(other))
    argv = [*base, "--preset", "depth", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    assert "holds another sweep than this sweep (they differ in recipe, settings)" in (
        capsys.readouterr().err)
    chosen = settings.preset("depth")
    mine = results.config("depth", settings.recipe(chosen), "lite", [asdict(s) for s in chosen],
                          [1, 2, 3], None, folder, files=path)
    mine["code"]["sha256"] = "0" * 64  # rows of other code
    (folder / results.CONFIG).write_text(json.dumps(mine))
    assert cli.main(argv) == 2
    assert "rows were computed by other code (sha256 000000000000)" in capsys.readouterr().err


@pytest.mark.slow
def test_one_defended_setting_end_to_end(lite, tmp_path):
    s = replace(job.Setting("noise", split_after=4, defense="noise:gauss:0.5"), epochs=1,
                attack_epochs=1, whitebox_limit=3, blank_whitebox=True)
    row, lines = job.run(s, lite, tmp_path)
    assert row["key"] == s.key() and 0 < row["val_accuracy"] <= 1 and 0 < row["accuracy"] <= 1
    assert row["activation_std"] > 0 and 0 < row["dcor"] <= 1
    assert row["activation"] == [1, 1, 32] and 32 * 4 < row["bytes_per_frame"] < 32 * 4 + 100
    assert row["naive"]["n"] == row["adaptive"]["n"] == len(lite.test)
    assert row["whitebox"]["n"] == row["blackbox_subset"]["n"] == 3
    assert row["blackbox_subset"]["chance_top1"] == pytest.approx(1 / 3)
    assert row["classes"] == len(lite.classes)
    assert row["naive"]["blank_page_top1"] == row["naive"]["mean_image_top1"] == pytest.approx(
        1 / len(lite.test))  # a constant reconstruction ranks at chance (attack/metrics.py)
    assert row["whitebox_blank"]["n"] == 3 and [label for label, _ in lines] == [
        "original", "naive attacker", "adaptive attacker", "white box", "white box, blank start"]
    assert set(row["seconds"]) == {"target", "decoders", "blackbox", "whitebox", "whitebox_blank",
                                   "evaluate"} and all(v >= 0 for v in row["seconds"].values())
    attacks = list((tmp_path / "attacks").iterdir())
    assert len(attacks) == 2  # naive and adaptive decoders
    assert not list(tmp_path.rglob(rundir.EVAL))  # scores go to the row, not to shared folders


def test_limit_and_seed_reach_training_and_leave_older_keys_unchanged():
    s = job.Setting("x")
    older = {k: v for k, v in asdict(s).items() if k not in (
        "limit", "seed", "attack_arch", "attack_patience", "blank_whitebox")}
    assert s.key() == job.key_hash(older)  # results.json written before these fields match
    lab = replace(s, limit=100, seed=7)
    assert lab.key() != s.key() and lab.target_key() != s.target_key()
    assert (lab.train_config().limit, lab.train_config().seed, lab.decoder_config().seed) == (
        100, 7, 7)
    full = settings.estimate_seconds([s], set())
    assert settings.estimate_seconds([lab], set()) < full
    assert settings.estimate_seconds([replace(s, attack_epochs=10)], set()) < full
    assert {x.split_after for x in settings.preset("lab")} == {settings.DEFENCE_SPLIT}
