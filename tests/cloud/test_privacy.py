"""ε as trained: our figures against tensorflow-privacy's own computation, and refusals."""

import json

import pytest

from splitleak.cloud import privacy
from splitleak.tools.cli import privacy as cmd_privacy
from tests.conftest import splitleak

SETTING = dict(n=10_976, batch=32, noise=0.7, epochs=20, delta=1e-5)  # n/B whole: same steps


@pytest.mark.parametrize("accountant", privacy.ACCOUNTANTS)
def test_epsilon_equals_tensorflow_privacy(accountant):
    from tensorflow_privacy.privacy.analysis import compute_dp_sgd_privacy_lib as lib

    kind = lib.AccountantType[accountant.upper()]
    n, batch, noise, epochs, delta = SETTING.values()
    poisson = lib._compute_dp_sgd_example_privacy(  # noqa: SLF001 (the figure it prints)
        epochs, noise, delta, used_microbatching=False, poisson_subsampling_probability=batch / n,
        accountant_type=kind)
    once_per_epoch = lib._compute_dp_sgd_example_privacy(  # noqa: SLF001
        epochs, noise, delta, used_microbatching=False, accountant_type=kind)
    assert privacy.epsilon(**SETTING, sampling="poisson", accountant=accountant) == \
        pytest.approx(poisson, rel=1e-9)
    assert privacy.epsilon(**SETTING, sampling="shuffle", accountant=accountant) == \
        pytest.approx(once_per_epoch, rel=1e-9)


def test_more_noise_fewer_examples_and_shuffling_move_epsilon_the_right_way():
    base = privacy.epsilon(**SETTING)
    assert privacy.epsilon(**SETTING | {"noise": 1.0}) < base
    assert privacy.epsilon(**SETTING | {"n": 13_180}) < base
    assert privacy.epsilon(**SETTING | {"noise": 0.0}) == float("inf")
    assert privacy.epsilon(**SETTING, sampling="shuffle") > 5 * base
    assert privacy.epsilon(**SETTING, accountant="pld") < base


def test_older_conversion_reproduces_the_seeds_figures():
    for noise, theirs in cmd_privacy.SEED["epsilon"].items():
        ours = privacy.classic_rdp_epsilon(cmd_privacy.SEED["n_passed"], 32, noise, 20, 1e-5)
        assert ours == pytest.approx(theirs, rel=0.02)
        assert privacy.epsilon(13_180, 32, noise, 20, 1e-5) < ours


def test_statement_records_the_run():
    s = privacy.statement(**SETTING, sampling="shuffle")
    assert s["steps"] == 20 * 343 and s["sampling"] == "shuffle"
    assert set(s["epsilon"]) == {"rdp", "pld"}
    assert privacy.steps(11_000, 32, 20) == 20 * 344 and privacy.steps(11_000, 32, 0.5) == 172


@pytest.mark.parametrize("bad, message", [
    ({"delta": 1e-3}, "delta must be in (0, 1/n]"),
    ({"noise": -1.0}, "noise multiplier must be >= 0"),
    ({"batch": 20_000}, "1 <= batch <= n"),
    ({"epochs": 0}, "epochs must be positive"),
])
def test_bad_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        privacy.epsilon(**SETTING | bad)


def test_cli_json_and_one_line_errors():
    args = ("privacy", "epsilon", "--n", 10976, "--batch", 32, "--noise", 0.7, "--epochs", 20)
    result = splitleak(*args, "--delta", 1e-5, "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["epsilon"]["rdp"] == pytest.approx(privacy.epsilon(**SETTING))
    result = splitleak(*args, "--delta", 0.5)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "delta" in result.stderr
    result = splitleak("privacy", "epsilon", "--n", 100)
    assert result.returncode == 2 and "missing --batch" in result.stderr


def test_seed_table_reproduces_the_seeds_figures_and_ranks_the_accountants():
    result = splitleak("privacy", "epsilon", "--seed-table", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["noise"] for r in rows] == [0.7, 0.5, 0.3]
    for r in rows:  # the older RDP conversion at n 13,180 gives what the seed printed
        assert r["classic_rdp_13180"] == pytest.approx(r["seed"], rel=0.02)
        assert r["poisson_pld_13180"] < r["poisson_rdp_13180"] < r["classic_rdp_13180"]
        assert r["poisson_rdp_11000"] > r["poisson_rdp_13180"]  # fewer examples, less amplification
        assert r["shuffle_rdp_11000"] > r["poisson_rdp_11000"]
