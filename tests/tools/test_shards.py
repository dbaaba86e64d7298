"""Seeds, shards and merging: a sweep's jobs, split for a job array and joined again (rows
stubbed: the training and attacks are tested where they live)."""

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from splitleak.cloud import data
from splitleak.tools import cli
from splitleak.tools.experiments import frontier, job, results, settings, sweep
from tests.tools.test_experiment import _row

TINY = {"epochs": 1, "attack_epochs": 1, "whitebox_limit": 3, "limit": 96}


def test_each_preset_has_its_seeds_and_config_or_flag_may_set_them():
    depth = settings.preset("depth")
    assert settings.seeds_for("depth", depth) == settings.seeds_for("seed-dp", depth) == [1, 2, 3]
    assert settings.seeds_for("lab", settings.preset("lab")) == [None]  # its one student seed
    assert settings.seeds_for("depth", depth, [4, 5]) == [4, 5]
    student = [replace(s, seed=4711) for s in settings.preset("lab")]
    assert settings.seeds_for("lab", student) == [4711]
    with pytest.raises(ValueError, match="--config sets the seed"):
        settings.seeds_for("lab", student, [1])
    with pytest.raises(ValueError, match="names a seed twice"):
        settings.seeds_for("depth", depth, [1, 1])
    jobs = settings.jobs(depth, [1, 2, 3])
    assert len({s.key() for s in jobs}) == 12 == len({s.target_key() for s in jobs})
    # seed 1 is the configs' own: targets trained before seeds were swept are reused
    assert jobs[0].target_key() == depth[0].target_key() and jobs[0].key() != depth[0].key()


@pytest.mark.parametrize("preset", ["depth", "defences", "all"])
def test_shards_partition_the_jobs_by_target_and_their_estimates_add_up(preset):
    jobs = settings.jobs(settings.preset(preset), [1, 2, 3])
    whole = settings.estimate_seconds(jobs, set())
    assert whole == pytest.approx(3 * settings.estimate_seconds(settings.preset(preset), set()))
    for count in (1, 2, 5):
        parts = [settings.shard(jobs, i, count) for i in range(1, count + 1)]
        keys = [s.key() for part in parts for s in part]
        assert sorted(keys) == sorted(s.key() for s in jobs)  # every job once
        targets = [{s.target_key() for s in part} for part in parts]
        assert sum(map(len, targets)) == len(set().union(*targets))  # no target in two shards
        assert sum(settings.estimate_seconds(p, set()) for p in parts) == pytest.approx(whole)
    with pytest.raises(ValueError, match="1-based"):
        settings.shard(jobs, 0, 2)


def _stub(monkeypatch) -> list:
    """Jobs are recorded, not run; a row's top-1 depends on its seed."""
    ran = []

    def fake(s, proto, models):
        ran.append(s.key())
        row = _row(s, 0.3 + 0.1 * ((s.seed or 0) % 5)) | {"classes": 3, "seconds": {}}
        return row, [("original", np.zeros((1, 8, 8, 1)))]

    monkeypatch.setattr(job, "run", fake)
    monkeypatch.setattr(frontier, "run", fake)
    monkeypatch.setattr(data, "load_protocol", lambda *a, **k: None)
    return ran


def _sweep(tmp_path, out, *extra) -> int:
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    return cli.main(["experiment", "sweep", "--preset", "depth", "--config", str(config),
                     "--seeds", "1", "2", "--out", str(tmp_path / out), *extra])


def test_two_shards_merged_are_the_sweep_unsharded(monkeypatch, tmp_path, capsys):
    ran = _stub(monkeypatch)
    assert _sweep(tmp_path, "whole") == 0
    whole = results.row_keys(tmp_path / "whole" / "results")
    assert len(whole) == 8 == len(ran)
    capsys.readouterr()
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    printed = capsys.readouterr().out
    assert "= 8 jobs; shard 1/2: 4 jobs, 0 already done" in printed
    assert "the whole sweep from scratch about" in printed and "left for this run about" in printed
    assert _sweep(tmp_path, "b", "--shard", "2/2", "--results", str(tmp_path / "b-rows")) == 0
    a, b = (results.row_keys(tmp_path / f) for f in ("a/results", "b-rows"))
    assert a and b and not a & b and len(ran) == 16
    dest = tmp_path / "merged"
    assert cli.main(["experiment", "merge", str(dest), str(tmp_path / "a"),
                     str(tmp_path / "b-rows")]) == 0
    assert "8 row(s) added to 0; 8 in the sources" in capsys.readouterr().out
    assert results.row_keys(dest) == whole
    row = json.loads((dest / "rows" / f"{sorted(a)[0]}.json").read_text())
    assert row["provenance"]["shard"] == "1/2" and row["setting"]["seed"] in (1, 2)
    cfg = results.read_config(dest)
    assert cfg["results"] == str(dest) and cfg["seeds"] == [1, 2]
    assert cfg["command"] == (f"splitleak experiment sweep --preset depth --config "
                              f"{tmp_path / 'tiny.json'} --seeds 1 2 --results {dest}")
    assert cli.main(["experiment", "report", str(dest)]) == 0
    merged = (dest / "results.md").read_text()
    unsharded = (tmp_path / "whole" / "results" / "results.md").read_text()
    assert merged.split("\n---\n")[0] == unsharded.split("\n---\n")[0]  # the same tables
    assert "Rows: 8 of 8 (4 settings × 2 seeds)." in merged
    assert cli.main(["experiment", "merge", str(dest), str(tmp_path / "a")]) == 0  # again: no-op
    assert "0 row(s) added to 8" in capsys.readouterr().out
    ran.clear()
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0 and not ran  # resumed: nothing left


def test_merge_refuses_other_sweeps_other_code_and_rows_that_differ(monkeypatch, tmp_path, capsys):
    _stub(monkeypatch)
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    assert _sweep(tmp_path, "b", "--shard", "2/2") == 0
    other = tmp_path / "other"
    s = job.Setting("x")
    results.open_folder(other, results.config("lab", "r", "lite", [asdict(s)], [1], None, other))
    assert cli.main(["experiment", "merge", str(tmp_path / "m"), str(tmp_path / "a"),
                     str(other)]) == 2
    assert "holds another sweep" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written before the check
    cfg = results.read_config(tmp_path / "b" / "results")
    results.open_folder(tmp_path / "c", cfg | {"code": {"sha256": "old", "files": []}})
    with pytest.raises(ValueError, match="computed by other code"):
        results.merge(tmp_path / "m", [tmp_path / "a", tmp_path / "c"])
    rows = sorted((tmp_path / "b" / "results" / "rows").iterdir())
    changed = json.loads(rows[0].read_text()) | {"accuracy": 0.1}
    (tmp_path / "a" / "results" / "rows" / rows[0].name).write_text(results.dump(changed))
    with pytest.raises(ValueError, match=f"row {rows[0].stem} differs between"):
        results.merge(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    assert cli.main(["experiment", "sweep", "--preset", "seed-dp", "--dry-run",
                     "--out", str(tmp_path / "w"), "--results", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert "preset seed-dp: 4 settings x 3 seed(s) (1, 2, 3) = 12 jobs, 0 already done" in printed
    whole = settings.estimate_seconds(settings.jobs(settings.preset("seed-dp"), [1, 2, 3]), set())
    assert f"from scratch {sweep.duration(whole)}; left for this run {sweep.duration(whole)}" in printed
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()
    with pytest.raises(SystemExit):
        cli.main(["experiment", "sweep", "--preset", "depth", "--shard", "0/2"])
    assert "expected 1 <= I <= N (1-based)" in capsys.readouterr().err


def test_a_results_json_from_before_results_folders_is_kept(monkeypatch, tmp_path):
    _stub(monkeypatch)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps({"preset": "depth", "settings": {}}))
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    assert json.loads((tmp_path / "a" / "results-legacy.json").read_text())["settings"] == {}
    view = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(view["settings"]) == results.row_keys(tmp_path / "a" / "results")
    assert results.read(tmp_path / "a") == results.read(tmp_path / "a" / "results")


def test_the_lab_sweep_leaves_what_lab_4s_check_reads(monkeypatch, tmp_path):
    from splitleak.tools.labs import checks

    _stub(monkeypatch)
    (tmp_path / "sweep.json").write_text(json.dumps(TINY | {"seed": 4711}))
    assert cli.main(["experiment", "sweep", "--preset", "lab", "--config",
                     str(tmp_path / "sweep.json"), "--out", str(tmp_path / "sweep")]) == 0
    from splitleak.tools.experiments.settings import preset
    from splitleak.tools.labs import evidence

    checked = []  # the stub trains no model to evaluate again: record what would be
    monkeypatch.setattr(evidence, "deployed_accuracy", lambda folder, row, name: checked.append(
        (name, row["setting"]["seed"])))
    steps = checks.lab4(tmp_path, {})
    steps[2]()  # every lab setting, with the student's seed, in sweep/results.json
    assert checked == [(s.name, 4711) for s in preset("lab")]
    steps[3]()  # results.md, the plot and report.html in sweep/
    cfg = results.read_config(tmp_path / "sweep" / "results")
    assert cfg["seeds"] == [4711] and "--seeds" not in cfg["command"]


def test_models_trained_by_other_code_are_not_reused(monkeypatch, tmp_path, capsys):
    _stub(monkeypatch)
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    marker = tmp_path / "a" / sweep.CODE_FILE
    recorded = json.loads(marker.read_text())["code_files"]
    assert sorted(recorded) == sorted(results.read_config(tmp_path / "a" / "results")["code"]["files"])
    marker.write_text(json.dumps({"code_files": recorded | {"cloud/train.py": "0" * 16}}))
    assert _sweep(tmp_path, "a", "--shard", "2/2", "--results", str(tmp_path / "r")) == 2
    assert "trained by other code (cloud/train.py changed since)" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written
    marker.write_text(json.dumps({"sha256": "f" * 64}))  # the format before each module's hash
    assert _sweep(tmp_path, "a", "--shard", "2/2", "--results", str(tmp_path / "r")) == 2
    assert "the hash over its modules changed since" in capsys.readouterr().err
    marker.write_text(json.dumps({"sha256": "f" * 64, "files": ["cloud/gone.py"]}))
    assert _sweep(tmp_path, "a", "--shard", "2/2", "--results", str(tmp_path / "r")) == 2
    assert "the hash over its modules changed since" in capsys.readouterr().err  # one line


def test_models_from_before_code_hashes_are_reused_with_a_warning(monkeypatch, tmp_path, capsys):
    _stub(monkeypatch)
    (tmp_path / "a" / job.TARGETS).mkdir(parents=True)
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    assert "holds models from before code hashes were recorded" in capsys.readouterr().out
    assert (tmp_path / "a" / sweep.CODE_FILE).is_file()


def test_a_folder_narrowed_to_the_modules_its_rows_run_stays_current_and_resumes(
        monkeypatch, tmp_path):
    """A folder whose code list named a module its rows never import (cloud/dp.py in the depth
    sweep's, before settings.code_path) is narrowed once: its rows' hash over the longer list is
    kept as wider_hashes, and a sweep with the narrowed path resumes it."""
    ran = _stub(monkeypatch)
    assert _sweep(tmp_path, "a", "--shard", "1/2") == 0
    folder = tmp_path / "a" / "results"
    cfg = results.read_config(folder)
    rows = [json.loads(p.read_text()) for p in (folder / results.ROWS).glob("*.json")]
    for row in rows:  # as if computed when the list was longer
        row["provenance"]["code_hash"] = "1" * 64
        results.write_row(folder, row)
    assert "is stale" in results.stale(folder)
    cfg["code"]["wider_hashes"] = ["1" * 64]
    (folder / results.CONFIG).write_text(results.dump(cfg))
    assert results.stale(folder) is None
    assert _sweep(tmp_path, "a", "--shard", "2/2") == 0  # resumed: the configs agree
    assert len(results.row_keys(folder)) == len(set(ran)) == 2 * len(settings.preset("depth"))
