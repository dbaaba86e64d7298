"""`splitleak attack train` and `eval`: attack directories, baselines, target checks."""

import json

import numpy as np
import pytest

from splitleak.attack import store
from splitleak.attack.evaluate import SEED_TRAINING_LOSS
from splitleak.cloud import rundir
from splitleak.edge.runtime import sha256_file

pytestmark = pytest.mark.slow  # each test trains or queries through the CLI


def test_train_writes_attack_dir(attack_dir, run_dir):
    assert sorted(p.name for p in attack_dir.iterdir() if not p.name.startswith(("eval", "b", "w"))) \
        == [rundir.DECODER, rundir.HISTORY, rundir.MANIFEST]
    decoder, manifest = store.load_decoder(attack_dir)
    assert decoder.output_shape == (None, 105, 105, 1)
    assert manifest["target"]["sha256"] == sha256_file(rundir.mobile(run_dir))
    assert manifest["target"]["run_protocol"] == "lite" and manifest["target"]["in_run_manifest"]
    assert manifest["data"] == manifest["data"] | {"protocol": "lite", "images": 48, "limit": 48}
    assert manifest["config"]["arch"] == "upsample" and manifest["config"]["seed"] == 1
    assert {"tensorflow", "numpy"} <= set(manifest["versions"])
    assert manifest["artifacts"][rundir.DECODER] == sha256_file(attack_dir / rundir.DECODER)
    history = json.loads((attack_dir / rundir.HISTORY).read_text())
    assert len(history["epochs"]) == 1 and "val_mse" in history["epochs"][0]


def test_existing_dir_refused_without_force(attack_dir, run_dir, cli_run, capsys):
    before = sha256_file(attack_dir / rundir.DECODER)
    code = cli_run("attack", "train", "--target", rundir.mobile(run_dir), "--epochs", 1,
                   "--limit", 8, "--out", attack_dir)
    assert code == 2 and "--force" in capsys.readouterr().err
    assert sha256_file(attack_dir / rundir.DECODER) == before


def test_failed_training_leaves_nothing(tmp_path, run_dir, cli_run, monkeypatch, capsys):
    from splitleak.attack import blackbox

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(blackbox, "train", broken)
    out = tmp_path / "attack"
    assert cli_run("attack", "train", "--target", rundir.mobile(run_dir), "--epochs", 1,
                   "--limit", 8, "--out", out) == 2
    assert "boom" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_force_replaces(tmp_path, run_dir, cli_run):
    out = tmp_path / "attack"
    args = ("attack", "train", "--target", rundir.mobile(run_dir), "--arch", "seed",
            "--epochs", 1, "--limit", 16, "--out", out)
    assert cli_run(*args) == 0
    assert cli_run(*args, "--force", "--seed", "2") == 0
    assert store.load_manifest(out)["config"]["seed"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["attack"]  # no temp folders left


def test_eval_scores_and_baselines(attack_dir, lite, cli_run):
    assert cli_run("attack", "eval", attack_dir, "--limit", 20) == 0
    result = json.loads((attack_dir / rundir.EVAL).read_text())["blackbox"]["test"]
    images = lite.test.images[:20]
    attacker_mean = lite.attacker.images[:48].mean(axis=0)
    assert result["n"] == 20
    assert result["baselines"]["blank_page"]["mse"] == pytest.approx(np.mean(images ** 2), 1e-5)
    assert result["baselines"]["attacker_mean_image"]["mse"] == pytest.approx(
        np.mean((images - attacker_mean) ** 2), 1e-5)
    for baseline in result["baselines"].values():  # constant images: exactly chance
        ident = baseline["identification"]
        assert (ident["top1"], ident["top5"], ident["median_rank"]) == (1 / 20, 5 / 20, 10.5)
    assert set(result["per_group"]) == set(lite.test.alphabets[:20])
    assert sum(s["n"] for s in result["per_group"].values()) == 20
    assert 0 < result["reconstruction"]["mse"] < 1
    assert result["reconstruction"]["identification"]["chance_top1"] == 1 / 20
    own = result["training_images"]
    assert 40 <= own["n"] < 48 and 0 < own["mse"] < 1
    assert own["seed_final_training_loss"] == SEED_TRAINING_LOSS
    assert result["frames_per_s"]["value"] > 0
    for name in result["grids"]:
        assert (attack_dir / name).read_bytes()[:4] == b"\x89PNG"


def test_eval_refuses_another_target(attack_dir, other_run, cli_run, capsys):
    other = rundir.mobile(other_run)
    code = cli_run("attack", "eval", attack_dir, "--target", other, "--limit", 4)
    err = capsys.readouterr().err
    assert code == 2
    assert sha256_file(other) in err
    assert store.load_manifest(attack_dir)["target"]["sha256"] in err
    assert cli_run("attack", "eval", attack_dir, "--target", other, "--limit", 4,
                   "--split", "attacker", "--force") == 0
    result = json.loads((attack_dir / rundir.EVAL).read_text())["blackbox"]["attacker"]
    assert result["target"]["matches_manifest"] is False


def test_tampered_decoder_refused(tmp_path, attack_dir):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(attack_dir, copy)
    with open(copy / rundir.DECODER, "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="sha256"):
        store.load_decoder(copy)


def test_user_errors_exit_2(tmp_path, cli_run, capsys):
    assert cli_run("attack", "eval", tmp_path / "missing") == 2
    assert "not found" in capsys.readouterr().err
    assert cli_run("attack", "train", "--target", tmp_path / "x.tflite", "--epochs", 1) == 2
    assert "not found" in capsys.readouterr().err
    assert cli_run("attack", "train", "--target", tmp_path / "x.tflite", "--epochs", 0) == 2
    assert "positive" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["train", "eval", "whitebox"])
def test_help_is_cheap(sub):
    import subprocess
    import sys

    code = ("import sys; from splitleak.tools import cli; "
            "parser = cli.build_parser(); assert 'tensorflow' not in sys.modules; "
            f"parser.parse_args(['attack', '{sub}', '--help'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "usage: splitleak attack" in done.stdout, done.stderr


def test_naive_and_adaptive_attackers_against_a_defended_device(cli_run, attack_dir, run_dir,
                                                                 omniglot_dir, tmp_path):
    defence = "noise:laplace:0.3,quant:int8"
    adaptive = tmp_path / "adaptive"
    assert cli_run("attack", "train", "--target", rundir.mobile(run_dir), "--epochs", 1,
                   "--limit", 48, "--defense", defence, "--out", adaptive,
                   "--omniglot-dir", omniglot_dir) == 0
    assert json.loads((adaptive / rundir.MANIFEST).read_text())["defense"] == defence
    for folder, kind in ((attack_dir, "naive"), (adaptive, "adaptive")):
        assert cli_run("attack", "eval", folder, "--limit", 16, "--defense", defence,
                       "--omniglot-dir", omniglot_dir) == 0
        result = json.loads((folder / rundir.EVAL).read_text())["blackbox"]["test-defended"]
        assert (result["defense"], result["attacker"], result["n"]) == (defence, kind, 16)
    assert cli_run("attack", "eval", attack_dir, "--limit", 16, "--defense", "noise:gauss:0",
                   "--omniglot-dir", omniglot_dir) == 2


def _snapshot(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_scoring_writes_nothing_and_save_writes_its_result(attack_dir, omniglot_dir, tmp_path):
    from splitleak.attack import evaluate

    before = _snapshot(attack_dir)
    e = evaluate.score_blackbox(attack_dir, limit=8, defense="quant:int8")
    assert _snapshot(attack_dir) == before
    assert (e.attack, e.split, e.name) == ("blackbox", "test-defended", "blackbox-test-defended")
    assert len(e.recons) == len(e.originals) == len(e.activations) == e.result["n"] == 8
    assert "frames_per_s" not in e.result and "grids" not in e.result  # the caller's to add
    path = evaluate.save(tmp_path, e)
    saved = json.loads(path.read_text())
    assert list(saved) == ["blackbox"] and list(saved["blackbox"]) == ["test-defended"]
    entry = saved["blackbox"]["test-defended"]
    assert entry.pop("grids") == ["blackbox-test-defended-first16.png",
                                  "blackbox-test-defended-best-worst.png"]
    assert entry == json.loads(json.dumps(e.result))
    assert all((tmp_path / name).is_file() for name in ("blackbox-test-defended-first16.png",
                                                        "blackbox-test-defended-best-worst.png"))
