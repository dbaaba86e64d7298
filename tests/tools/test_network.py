"""The network experiment on real Mosquitto: who receives the device's activations."""

import json

import pytest

from splitleak.cloud import rundir
from splitleak.tools.deploy import netns
from tests.conftest import splitleak


@pytest.fixture(scope="module")
def decoder(tiny_run, omniglot_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("network") / "decoder"
    assert splitleak("attack", "train", "--target", rundir.mobile(tiny_run), "--epochs", 1,
                     "--limit", 32, "--out", out, "--omniglot-dir", omniglot_dir).returncode == 0
    return out


@pytest.mark.slow
def test_tls_keeps_every_eavesdropper_but_a_stolen_cloud_credential_out(
        tiny_run, decoder, omniglot_dir, tmp_path):
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


@pytest.mark.slow
def test_on_the_wire_a_sniffer_without_an_account_reads_plain_mqtt_and_its_password_not_tls(
        tiny_run, decoder, omniglot_dir, tmp_path):
    try:
        netns.check_can_make()
    except netns.NetError as exc:
        pytest.skip(str(exc))
    result = splitleak("experiment", "network", "--wire", "--engine", "mosquitto", "--profiles",
                       "auth", "tls", "--frames", 12, "--run", tiny_run, "--decoder", decoder,
                       "--out", tmp_path / "net", "--json", "--omniglot-dir", omniglot_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    rows = {r["profile"]: r for r in found["rows"]}
    assert found["wire"] and rows["auth"]["cloud"] == rows["tls"]["cloud"] == 12
    auth, tls = rows["auth"]["wire"], rows["tls"]["wire"]
    assert auth["frames"] == auth["reconstruction"]["n"] == 12
    assert [c["username"] for c in auth["credentials"]] == ["edge"] and len(auth["passwords"]) == 1
    assert (tls["frames"], tls["credentials"], tls["mqtt_packets"]) == (0, [], 0)
    assert tls["unreadable"] > 0 and tls["reconstruction"] is None
    assert "0: encrypted" in (tmp_path / "net" / "results.md").read_text()
    assert not [name for name in netns.existing(netns.LabNet(prefix="splitleak-exp"))]
