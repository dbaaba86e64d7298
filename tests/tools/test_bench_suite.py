"""`bench all` without running it: docs/reliability.md's table is generated from docs/bench/all.json, and
the command line hands its options to tools/bench/suite.run."""

import json

from splitleak.cloud.config import SPLITS
from splitleak.tools.bench import attack, suite
from splitleak.tools.cli import build_parser
from tests.conftest import REPO


def test_the_reliability_page_table_is_the_markdown_of_all_json():
    report = json.loads(REPO.joinpath("docs/bench/all.json").read_text(encoding="utf-8"))
    page = REPO.joinpath("docs/reliability.md").read_text(encoding="utf-8")
    table = page.split("<!-- bench all -->\n", 1)[1].split("<!-- /bench all -->", 1)[0]
    assert suite.summary(report) == report["summary"]
    assert suite.markdown(report) == table


def test_bench_all_passes_its_options_to_the_suite(monkeypatch, tmp_path, capsys):
    got = {}
    monkeypatch.setattr(suite, "run", lambda **kw: got.update(kw) or {"bench": "all"})
    monkeypatch.setattr(suite, "describe", lambda r: "table")
    args = build_parser().parse_args(["bench", "all", "--quick", "--skip", "demo", "dp",
                                      "--json", str(tmp_path / "all.json")])
    assert args._module.run(args) == 0 and capsys.readouterr().out == "table\n"
    assert got == {"splits": list(SPLITS), "run_dir": None, "decoder": attack.DECODER,
                   "skip": ["demo", "dp"], "quick": True, "json_file": tmp_path / "all.json"}
