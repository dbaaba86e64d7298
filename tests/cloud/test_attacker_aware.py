"""Attacker-aware training (cloud/defended.py) on a small run: the training adversary's error
rises once the model resists it, and a fresh decoder, trained after the model is frozen,
reconstructs the defended stage worse than the undefended one."""

import json

import pytest

from splitleak.cloud import rundir
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.defended import Defence

IMAGES, EPOCHS, WARMUP = 384, 5, 2


@pytest.mark.slow
def test_the_adversary_loses_ground_and_a_fresh_decoder_does_worse(tmp_path, lite):
    from splitleak.attack import evaluate, store
    from splitleak.attack.config import TrainConfig as DecoderConfig
    from splitleak.attack.train import train_decoder
    from splitleak.cloud import train, train_defended

    cfg = TrainConfig(epochs=EPOCHS, limit=IMAGES, norm="group", dropout=0.0, split_after=2)
    train.run(lite, cfg, tmp_path / "plain")
    train_defended.run(lite, cfg, Defence(adversarial=30.0, bottleneck=4, warmup=WARMUP),
                       tmp_path / "defended")
    epochs = json.loads((tmp_path / "defended" / rundir.METRICS).read_text())["epochs"]
    mse = [e["adversary_mse"] for e in epochs]
    assert mse[WARMUP] > mse[WARMUP - 1], mse  # the first epoch that resists undoes its progress
    fresh = {}
    for name in ("plain", "defended"):
        target = store.target_info(rundir.mobile(tmp_path / name))
        train_decoder(target, lite, DecoderConfig(epochs=4), tmp_path / f"att-{name}", True,
                      limit=IMAGES)
        result = evaluate.score_blackbox(tmp_path / f"att-{name}", "test", proto=lite,
                                         limit=128).result
        fresh[name] = result["reconstruction"]["mse"]
    assert fresh["defended"] > fresh["plain"], fresh
