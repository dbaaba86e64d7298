import json

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.defended import Defence, edge_spec


@pytest.mark.parametrize("spec", ["gauss", "gauss:0", "gauss:-1", "uniform:2", "gauss:x",
                                  "laplace:nan"])
def test_a_bad_train_noise_is_one_line_naming_the_form(spec):
    with pytest.raises(ValueError, match="expected gauss:K or laplace:K") as err:
        Defence(train_noise=spec).validate()
    assert "\n" not in str(err.value)


def test_training_defences_refuse_dp_and_bad_numbers():
    with pytest.raises(ValueError, match="cannot be combined with --dp"):
        Defence(adversarial=1.0).validate(dp=True)
    with pytest.raises(ValueError, match="cannot be combined with --dp"):
        Defence(bottleneck=8).validate(dp=True)
    assert Defence().validate(dp=True) == Defence()
    with pytest.raises(ValueError, match="--bottleneck"):
        Defence(bottleneck=2.5).validate()
    with pytest.raises(ValueError, match="--adversarial"):
        Defence(adversarial=-1).validate()


@pytest.mark.parametrize("kind, spread", [("gauss", 1.0), ("laplace", np.sqrt(2))])
def test_cut_noise_is_k_times_the_batch_std_whatever_the_scale(kind, spread):
    from splitleak.cloud.defended import CutNoise

    layer = CutNoise(kind, 2.0, seed=3)
    x = np.random.default_rng(0).normal(0, 1, (64, 5, 5, 8)).astype(np.float32)
    for scale in (1.0, 40.0):  # a network that scales its activation up gains nothing
        noise = layer(x * scale).numpy() - x * scale
        assert noise.std() / (x * scale).std() == pytest.approx(2.0 * spread, rel=0.05)


def test_the_edge_spec_scales_the_noise_by_the_measured_std():
    assert edge_spec(Defence(train_noise="laplace:4"), 0.5) == "noise:laplace:2"
    assert edge_spec(Defence(adversarial=3.0), 0.5) == ""


def test_the_bottleneck_narrows_the_cut_and_the_head_reads_it():
    from splitleak.cloud.defended import stages

    mobile, head = stages(3, TrainConfig(norm="group", dropout=0.0, split_after=2),
                          Defence(bottleneck=4))
    assert mobile.output_shape == (None, 13, 13, 4) and head.input_shape == mobile.output_shape
    assert mobile.layers[-1].name == "bottleneck"


@pytest.fixture(scope="module")
def defended_run(tmp_path_factory, lite):
    from splitleak.cloud import train_defended

    out = tmp_path_factory.mktemp("defended") / "run"
    cfg = TrainConfig(epochs=1, limit=64, norm="group", dropout=0.0, split_after=2, nopeek=1.0)
    train_defended.run(lite, cfg, Defence(train_noise="gauss:2", adversarial=1.0, bottleneck=4, warmup=0),
                       out)
    return out


def test_a_defended_run_is_a_run_folder_the_edge_deploys(defended_run, lite):
    from splitleak.edge.defences import Device

    metrics = json.loads((defended_run / rundir.METRICS).read_text())
    epoch = metrics["epochs"][0]
    assert {"dcor", "adversary_mse", "val_accuracy"} <= set(epoch)
    defence = metrics["defence"]
    assert defence["bottleneck"] == 4 and defence["activation_std"] > 0
    assert defence["edge_defense"] == edge_spec(Defence(train_noise="gauss:2"),
                                                defence["activation_std"])
    manifest = json.loads((defended_run / rundir.MANIFEST).read_text())
    assert manifest["activation"]["shape"] == [13, 13, 4] == list(rundir.activation_shape(defended_run))
    published = Device.from_model(rundir.mobile(defended_run), defence["edge_defense"], 1)
    acts = published.run(lite.val.images[:16])
    clean = Device.from_model(rundir.mobile(defended_run)).run(lite.val.images[:16])
    assert acts.shape == (16, 13, 13, 4)
    assert (acts - clean).std() == pytest.approx(2 * defence["activation_std"], rel=0.2)


def test_train_takes_the_defences_and_says_how_to_deploy_the_noise(tmp_path):
    from tests.conftest import splitleak

    bad = splitleak("train", "--train-noise", "gauss", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "expected gauss:K or laplace:K" in bad.stderr and not (tmp_path / "bad").exists()
    done = splitleak("train", "--epochs", "1", "--limit", "64", "--split-after", "2", "--norm",
                     "group", "--train-noise", "laplace:2", "--bottleneck", "4", "--out",
                     tmp_path / "run")
    assert done.returncode == 0, done.stderr[-2000:]
    defence = json.loads((tmp_path / "run" / rundir.METRICS).read_text())["defence"]
    assert f"deploy with --defense {defence['edge_defense']}" in done.stdout
    assert defence["edge_defense"].startswith("noise:laplace:") and defence["bottleneck"] == 4


def test_the_warm_up_leaves_the_last_epoch_to_the_resistance():
    assert Defence(adversarial=1.0).first_epoch(20) == 2
    assert Defence(adversarial=1.0).first_epoch(2) == 1
    assert Defence(adversarial=1.0).first_epoch(1) == 0
    assert Defence(train_noise="gauss:2").first_epoch(20) == 0
