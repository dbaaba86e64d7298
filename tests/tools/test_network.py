"""The network experiment on real Mosquitto: who receives the device's activations."""

import json

import pytest

from splitleak.cloud import rundir
from tests.conftest import splitleak


@pytest.mark.slow
def test_tls_keeps_every_eavesdropper_but_a_stolen_cloud_credential_out(
        tiny_run, omniglot_dir, tmp_path):
    decoder = tmp_path / "decoder"
    assert splitleak("attack", "train", "--target", rundir.mobile(tiny_run), "--epochs", 1,
                     "--limit", 32, "--out", decoder, "--omniglot-dir", omniglot_dir
                     ).returncode == 0
    result = splitleak("experiment", "network", "--engine", "mosquitto", "--profiles", "open",
                       "tls", "--frames", 12, "--run", tiny_run, "--decoder", decoder,
                       "--out", tmp_path / "net", "--json", "--omniglot-dir", omniglot_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["profile"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["open"]["cloud"] == rows["tls"]["cloud"] == 12
    assert all(e["frames"] == 12 for e in rows["open"]["eavesdroppers"].values())
    tls = rows["tls"]["eavesdroppers"]
    assert tls["no credentials"]["frames"] == 0 and tls["no credentials"]["status"] == "refused"
    assert tls["wrong password"]["status"] == "refused"
    assert tls["attacker account"]["frames"] == tls["stolen edge credential"]["frames"] == 0
    assert tls["stolen cloud credential"]["frames"] == 12
    assert tls["stolen cloud credential"]["reconstruction"]["n"] == 12
    assert (tmp_path / "net" / "results.md").read_text().count("\n") == 4


def test_network_refuses_a_bad_frame_count(omniglot_dir):
    result = splitleak("experiment", "network", "--frames", 0, "--omniglot-dir", omniglot_dir)
    assert result.returncode == 2 and "--frames must be in 1..1000" in result.stderr
