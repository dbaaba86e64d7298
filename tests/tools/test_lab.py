"""The labs: handouts that parse, per-student variants, refusals, checks that fail on a fresh
folder, and (slow) each lab's own commands in short form, after which its check passes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from splitleak.tools import cli
from splitleak.tools.labs import checks as lab_checks
from splitleak.tools.labs import docs as lab_docs
from splitleak.tools.labs import lab
from tests.conftest import REPO

SECTIONS = ("## Objective", "## Threat model", "## Questions", "## Submission checklist", "## Ethics")


@pytest.mark.parametrize("n", lab.TITLES)
def test_each_handout_has_timed_tasks_with_commands_and_a_check_per_task(n, tmp_path):
    text = lab.handout(n).read_text()
    assert all(s in text for s in SECTIONS)
    steps = lab.tasks(n)
    assert [t.number for t in steps] == list(range(1, len(steps) + 1))
    assert all(t.commands.strip() for t in steps) and sum(t.minutes for t in steps) <= 15
    assert "source lab.env" in steps[0].commands
    checks = lab_checks.CHECKS[n](tmp_path, lab.variant(n, "x", "short"))
    assert sorted(checks) == [t.number for t in steps]
    notes = lab.HANDOUTS / "instructor" / f"lab{n}.md"
    assert notes.is_file() and "## Answers" in notes.read_text()


def test_a_students_variant_is_stable_and_differs_from_anothers():
    a, again, b = lab.variant(2, "alice"), lab.variant(2, "alice"), lab.variant(2, "bob")
    assert {k: a[k] for k in ("seed", "node")} == {k: again[k] for k in ("seed", "node")}
    assert a["seed"] != b["seed"] and a["node"] != b["node"]
    short = lab.variant(4, "alice", "short")  # lab 4 trains on fewer images than the others
    assert short["limit"] == lab.sizes(4, "short")["LIMIT"] < lab.SIZES["short"]["LIMIT"]


def test_start_writes_the_variant_its_images_and_env(tmp_path, omniglot_dir, capsys):
    folder = tmp_path / "lab5"
    assert cli.main(["lab", "start", "5", "--dir", str(folder), "--student", "alice",
                     "--size", "short", "--omniglot-dir", str(omniglot_dir)]) == 0
    out = capsys.readouterr().out
    assert "Task 1" in out and "splitleak train" in out  # the first task, printed
    v = lab.load(folder, 5)
    assert len(list((folder / "private").glob("*.png"))) == v["frames"]
    env = (folder / "lab.env").read_text()
    assert f"export NODE={v['node']}" in env and f"export SEED={v['seed']}" in env
    password = (folder / "vendor" / "password").read_text().strip()
    assert password in (folder / "wordlist.txt").read_text().split()
    assert password not in (folder / "lab.json").read_text()  # a salted hash only
    assert lab.password_check(password, v["password_check"]["salt"]) == v["password_check"]
    other = tmp_path / "other"
    cli.main(["lab", "start", "5", "--dir", str(other), "--student", "bob", "--size", "short",
              "--omniglot-dir", str(omniglot_dir)])
    assert lab.load(other)["images"] != v["images"]  # two students stream different images


@pytest.mark.parametrize("argv, message", [
    (["lab", "start", "9"], "unknown lab 9"),
    (["lab", "check", "0"], "unknown lab 0"),
    (["lab", "start", "1", "--student", "no spaces"], "--student"),
])
def test_bad_lab_arguments_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert cli.main(argv + ["--dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_start_refuses_a_non_empty_folder_unless_forced(tmp_path, omniglot_dir, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["lab", "start", "1", "--dir", str(tmp_path), "--size", "short",
            "--omniglot-dir", str(omniglot_dir)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert cli.main(argv + ["--force"]) == 0 and (tmp_path / "notes.txt").exists()


def test_check_on_a_folder_that_is_not_a_lab_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["lab", "check", "1", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a lab folder" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("n", lab.TITLES)
def test_check_fails_every_task_of_a_fresh_folder_with_a_hint(n, tmp_path, omniglot_dir, capsys):
    lab.start(n, tmp_path, "alice", size="short", omniglot_dir=omniglot_dir)
    assert cli.main(["lab", "check", str(n), "--dir", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"] and all(not t["ok"] and t["hint"] for t in report["tasks"])


def test_check_names_another_students_capture(tmp_path, omniglot_dir):
    v = lab.start(1, tmp_path, "alice", size="short", omniglot_dir=omniglot_dir)
    from splitleak.broker import topics, wire

    frame = wire.Frame("pi-someone", 0, 1.0, np.zeros((1, 1, 32), "float32"))
    (tmp_path / "capture.txt").write_text(
        f"{topics.activations('pi-someone')} {wire.encode(frame).hex()}\n" * v["frames"])
    hints = dict(lab_checks.run(1, tmp_path, v))
    assert "pi-someone" in hints[3] and v["node"] in hints[3]


def test_guess_finds_a_weak_password_on_a_local_broker(tmp_path, capsys):
    from splitleak.broker.server import free_port, start_broker

    words = tmp_path / "words.txt"
    words.write_text("# common\n123456\nletmein\n\nsunshine\nqwerty\n")
    broker = start_broker("amqtt", "auth", free_port(), tmp_path / "b", nodes=["pi-x"],
                          passwords={"pi-x": "sunshine"})
    try:
        url = f"mqtt://127.0.0.1:{broker.port}"
        assert cli.main(["attack", "guess", "--broker", url, "--user", "pi-x", "--wordlist",
                         str(words), "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert found["password"] == "sunshine" and found["tried"] == 3 and found["candidates"] == 4
        words.write_text("123456\nqwerty\n")
        assert cli.main(["attack", "guess", "--broker", url, "--user", "pi-x", "--wordlist",
                         str(words)]) == 1
        assert "not found" in capsys.readouterr().out
    finally:
        broker.stop()


def test_guess_refuses_a_broker_that_is_not_on_this_machine(tmp_path, capsys):
    words = tmp_path / "w.txt"
    words.write_text("x\n")
    assert cli.main(["attack", "guess", "--broker", "mqtt://192.0.2.1:1883", "--user", "u",
                     "--wordlist", str(words)]) == 2
    assert "only a broker on this machine" in capsys.readouterr().err


def _run_and_check(n: int, folder: Path, omniglot_dir, student: str) -> dict:
    """The handout's commands, as written, in a scratch folder (short size); then `lab check`."""
    v = lab.start(n, folder, student, size="short", omniglot_dir=omniglot_dir)
    run = subprocess.run(SPLITLEAK + ["lab", "run", str(n), "--dir", str(folder)], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    check = subprocess.run(SPLITLEAK + ["lab", "check", str(n), "--dir", str(folder)], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("✔") == len(lab.tasks(n))
    return v


SPLITLEAK = [sys.executable, "-m", "splitleak.tools.cli"]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # this env's
ON_A_HOST = [n for n in lab.TITLES if n not in lab.ROOT_LABS]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("n", ON_A_HOST)
def test_each_lab_passes_its_check_after_its_own_commands(n, tmp_path, omniglot_dir):
    _run_and_check(n, tmp_path / f"lab{n}", omniglot_dir, f"ci-{n}")


@pytest.mark.slow
@pytest.mark.e2e
def test_lab6_passes_after_its_commands_and_fails_on_a_copied_or_forged_capture(
        tmp_path, omniglot_dir):
    from scapy.utils import wrpcap

    from splitleak.broker import topics, wire
    from splitleak.cloud import rundir
    from splitleak.tools.deploy import netns
    from tests.attack.test_attack_sniff import connect, publish, segments

    try:
        netns.check_can_make()
    except netns.NetError as exc:
        pytest.skip(str(exc))
    folder = tmp_path / "lab6"
    v = _run_and_check(6, folder, omniglot_dir, "ci-6")
    # a classmate copies the folder, keeping their own lab.json: another node, another password
    mate = tmp_path / "mate"
    subprocess.run(["cp", "-a", folder, mate], check=True)
    lab.start(6, tmp_path / "fresh", "ci-mate", size="short", omniglot_dir=omniglot_dir)
    (mate / "lab.json").write_text((tmp_path / "fresh" / "lab.json").read_text())
    hints = dict(lab_checks.run(6, mate, lab.load(mate)))
    assert "plain.pcap holds no login of pi-ci-mate with its broker password" == hints[3]
    # a forged capture: the right login, frames of the right node that the model never gave
    password = json.loads((folder / "broker" / "credentials.json").read_text())[v["node"]]
    node = v["node"].encode()
    stream = connect(4, b"edge", node, password.encode())
    shape = rundir.activation_shape(folder / "target")
    for seq in range(v["frames"]):
        values = np.random.default_rng(seq).normal(size=shape).astype(np.float32)
        stream += publish(4, topics.activations(v["node"]),
                          wire.encode(wire.Frame(v["node"], seq, 1.0, values)))
    net = netns.LabNet(prefix=v["net"])
    wrpcap(str(folder / "plain.pcap"), segments(net.address("device"), net.address("broker"),
                                                40000, v["port"], stream))
    hints = dict(lab_checks.run(6, folder, v))
    assert hints[2] is None and "is not what target/mobile.tflite gives" in hints[3]


def _table_rows(text: str) -> dict:
    """{label: (reference, spread)} of a record table's rows."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ")]
    assert rows[0][:2] == ["what", "reference (alice)"]
    return {label: (ref, spread) for label, ref, spread in rows[1:]}


RECORD = {"lab": 2, "size": "full", "command": "splitleak lab record 2 --students alice bob "
       "carol --out lab2.json", "provenance": {
           "commit": "0123456789abcdef", "dirty": False, "date": "2026-11-25T10:00:00+00:00",
           "machine": {"cpu": "a CPU", "cores": 2}, "versions": {}},
       "students": {
           "alice": {"seconds": 200.4, "figures": {
               "target validation accuracy": 0.9781, "reconstructions: MSE": 0.07142,
               "live: frames seen": 60, "median rank": 5.0, "topics": "status, activations",
               "top-1": None}},
           "bob": {"seconds": 190.0, "figures": {
               "target validation accuracy": 0.9612, "reconstructions: MSE": 0.08,
               "live: frames seen": 60, "median rank": 6.5, "topics": "status, activations",
               "top-1": None}},
           "carol": {"seconds": 210.6, "figures": {
               "target validation accuracy": 0.99, "reconstructions: MSE": 0.06,
               "live: frames seen": 1720, "median rank": 3.0, "topics": "status",
               "top-1": None}}}}


def test_record_table_has_a_row_per_figure_and_the_spread_over_students():
    rec = RECORD
    text = lab_docs.table(rec, "docs/labs/records/lab2.json")
    first = text.splitlines()[0]
    assert all(s in first for s in ("`docs/labs/records/lab2.json`", rec["command"], "alice",
                                    "3 students", "0123456", "2026-11-25"))
    assert "0123456789" not in first and text.endswith("|\n")
    assert "| what | reference (alice) | over 3 students: min – max |" in text
    assert _table_rows(text) == {
        "target validation accuracy": ("0.978", "0.961 – 0.990"),
        "reconstructions: MSE": ("0.0714", "0.0600 – 0.0800"),
        "live: frames seen": ("60", "60 – 1,720"),
        "median rank": ("5", "3 – 6.5"),
        "topics": ("status, activations", "status, activations / status"),
        "top-1": ("–", "–"),
        lab_docs.SECONDS: ("200", "190 – 211"),
    }


@pytest.mark.parametrize("n", lab.TITLES)
def test_figures_of_a_folder_without_evidence_name_the_missing_file(n, tmp_path):
    from splitleak.tools.labs import record

    with pytest.raises(ValueError, match=r"lab\.json is missing"):
        record.figures(n, tmp_path)
    (tmp_path / "started").mkdir()  # a started lab that has not run
    (tmp_path / "started" / "lab.json").write_text(json.dumps(lab.variant(n, "alice", "short")))
    with pytest.raises(ValueError, match=r"is missing") as raised:
        record.figures(n, tmp_path / "started")
    assert str(tmp_path / "started") in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.slow
@pytest.mark.e2e
def test_record_runs_a_lab_per_student_and_tabulates_the_figures(tmp_path, omniglot_dir, capsys,
                                                                 monkeypatch):
    """Lab 2, short size, two students: the figures set by the lab agree, those of each student's
    own images and seed differ; the table has a row per figure and the right spread."""
    from splitleak.tools.experiments import provenance

    # this (pytest) process has imported every module: stamp only what the lab's commands ran
    monkeypatch.setattr(provenance, "imported", lambda root=provenance.ROOT: set())
    out = tmp_path / "lab2.json"
    assert cli.main(["lab", "record", "2", "--students", "alice", "bob", "--out", str(out),
                     "--size", "short"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines() == [captured.out.strip()] and str(out) in captured.out
    assert "student alice (1/2)" in captured.err and "student bob (2/2)" in captured.err
    rec = json.loads(out.read_text())
    assert {k: rec[k] for k in ("lab", "size", "command")} == {
        "lab": 2, "size": "short",
        "command": f"splitleak lab record 2 --students alice bob --out {out} --size short"}
    assert {"commit", "dirty", "versions", "machine", "date"} <= set(rec["provenance"])
    ran = rec["provenance"]["code_files"]  # the modules the lab's commands ran, each hashed
    assert {"attack/live.py", "edge/node.py", "cloud/service.py"} <= set(ran)
    assert "cloud/dp.py" not in ran and "cloud/train_defended.py" not in ran  # lab 2 runs neither
    assert list(rec["students"]) == ["alice", "bob"]
    a, b = (rec["students"][s]["figures"] for s in ("alice", "bob"))
    assert list(a) == list(b) and "blank page: MSE" in a and "top-1 identification" in a
    assert all(rec["students"][s]["seconds"] > 0 for s in ("alice", "bob"))
    size = lab.sizes(2, "short")
    for label, value in {"live: frames seen": size["FRAMES"], "frames scored": size["FRAMES"],
                         "live: frames reconstructed": size["FRAMES"],
                         "chance top-1": 1 / size["FRAMES"], "decoder: epochs run": 1,
                         "decoder: surrogate images": size["LIMIT"]}.items():
        assert a[label] == pytest.approx(value) and b[label] == pytest.approx(value), label
    assert a["decoder: held out"] == b["decoder: held out"]  # the same surrogate images
    assert a["blank page: MSE"] != b["blank page: MSE"]  # each student streams their own images
    assert a["decoder: held-out MSE"] != b["decoder: held-out MSE"]  # and trains with their seed
    rows = _table_rows(lab_docs.table(rec, out))
    assert list(rows) == [*a, lab_docs.SECONDS]
    for label in a:
        low, high = sorted((a[label], b[label]))
        low, high = lab_docs.fmt(label, low), lab_docs.fmt(label, high)
        assert rows[label] == (lab_docs.fmt(label, a[label]),
                               low if low == high else f"{low} – {high}"), label
    assert rows["live: frames seen"] == (str(size["FRAMES"]),) * 2


def test_every_lab_block_in_the_docs_is_its_record(tmp_path):
    from splitleak.tools.labs import docs

    done = docs.render_files(REPO, check=True)
    assert done["passed"], docs.describe(done)
    (tmp_path / "docs" / "results" / "labs").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "labs" / "lab2.json").write_text(json.dumps(RECORD))
    (tmp_path / "README.md").write_text("<!-- lab:lab2 -->\n| typed |\n<!-- /lab:lab2 -->\n")
    assert docs.render_files(tmp_path)["changed"] == ["README.md"]
    text = (tmp_path / "README.md").read_text()
    assert "| typed |" not in text and "| target validation accuracy | 0.978 | 0.961 – 0.990 |" in text
    assert docs.render_files(tmp_path, check=True)["passed"]
    (tmp_path / "README.md").write_text("<!-- lab:lab3 -->\n<!-- /lab:lab3 -->\n")
    with pytest.raises(ValueError, match="README.md: line 1: no lab record docs/results/labs/lab3.json"):
        docs.render_files(tmp_path)


def test_every_committed_lab_record_was_made_by_the_code_as_it_is():
    from splitleak.tools.experiments import provenance
    from splitleak.tools.labs import docs

    stale = {}
    for path in sorted((REPO / docs.RECORDS).glob("lab*.json")):
        why = provenance.stale_path(json.loads(path.read_text())["provenance"])
        if why:
            stale[path.name] = why
    assert not stale, f"re-run `splitleak lab record N --students alice bob carol`: {stale}"


def test_check_runs_from_inside_the_lab_folder(tmp_path, omniglot_dir, capsys, monkeypatch):
    lab.start(2, tmp_path / "mine", "alice", size="short", omniglot_dir=omniglot_dir)
    monkeypatch.chdir(tmp_path / "mine")
    assert cli.main(["lab", "check", "2", "--json"]) == 1  # checked here: every task still to do
    assert json.loads(capsys.readouterr().out)["tasks"]
    monkeypatch.chdir(tmp_path)  # elsewhere: ./lab2, which is not there
    assert cli.main(["lab", "check", "2"]) == 2
    assert "lab2 is not a lab folder" in capsys.readouterr().err


def test_grade_lists_each_folder_its_reasons_and_the_artifacts_two_share(tmp_path, omniglot_dir,
                                                                         capsys):
    import csv

    for student in ("alice", "bob", "carol"):
        lab.start(2, tmp_path / student, student, size="short", omniglot_dir=omniglot_dir)
    for student in ("alice", "bob"):  # bob's model is alice's, byte for byte
        (tmp_path / student / "target").mkdir()
        (tmp_path / student / "target" / "mobile.tflite").write_bytes(b"alice's model")
    (tmp_path / "stray").mkdir()
    folders = [str(tmp_path / name) for name in ("alice", "bob", "carol", "stray")]
    assert cli.main(["lab", "grade", *folders, "--csv", str(tmp_path / "grades.csv")]) == 0
    out = capsys.readouterr().out
    assert out.count("lab 2, student") == 3 and "0/4 tasks" in out and "    task 1: " in out
    assert f"shares an artifact with {tmp_path / 'bob'} (copied?)" in out
    assert f"✘ {tmp_path / 'stray'}: " in out and "not a lab folder" in out
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", ""]
    assert rows[2]["shared with"] == "" and rows[1]["shared with"] == str(tmp_path / "alice")
    assert rows[0]["passed"] == "0/4" and rows[0]["task 1"] and rows[0]["task 1"] != "ok"


def test_a_course_key_changes_every_secret_and_passwords_never_collide(monkeypatch):
    students = [f"s{i:04d}" for i in range(300)]
    public = {s: lab.variant(5, s) for s in students}
    monkeypatch.setenv(lab.ENV_COURSE_KEY, "the instructor's secret")
    keyed = {s: lab.variant(5, s) for s in students}
    assert all(public[s]["seed"] != keyed[s]["seed"] for s in students[:20])
    assert keyed["s0001"]["course"] == lab.key_id("the instructor's secret") != \
        public["s0001"]["course"]
    words = {lab.vendor_password(s).split("-")[0] for s in students}
    assert len(words) > 30  # the word itself still repeats across a class, as 63 words must,
    assert len({lab.vendor_password(s) for s in students}) == len(students)  # the password never
    assert lab.vendor_password("s0001") != lab.vendor_password("s0001", "another course")


def test_checks_refuse_a_fake_model_and_outputs_typed_from_lab_json(tmp_path, omniglot_dir):
    v = lab.start(5, tmp_path, "alice", size="short", omniglot_dir=omniglot_dir)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "mobile.tflite").write_bytes(b"not a model")
    from splitleak.edge.runtime import sha256_file

    (tmp_path / "target" / "manifest.json").write_text(json.dumps({
        "config": {"seed": v["seed"]}, "split_after": 4,
        "artifacts": {"mobile.tflite": sha256_file(tmp_path / "target" / "mobile.tflite")}}))
    (tmp_path / "guess.json").write_text(json.dumps({"user": v["node"], "password": "password",
                                                     "tried": 2}))
    hints = dict(lab_checks.run(5, tmp_path, v))
    assert "does not load as a TFLite model" in hints[1]
    assert f"did not recover {v['node']}'s password" in hints[3]


def test_grade_with_the_course_key_names_a_folder_started_with_another(tmp_path, omniglot_dir,
                                                                       capsys):
    lab.start(1, tmp_path / "ours", "alice", size="short", omniglot_dir=omniglot_dir, key="K")
    lab.start(1, tmp_path / "public", "bob", size="short", omniglot_dir=omniglot_dir)
    from splitleak.tools.labs import grade

    rows = {r["student"]: r for r in grade.grade([tmp_path / "ours", tmp_path / "public"], "K")}
    assert rows["alice"]["tasks"][0] is None
    assert "not this course's variant for bob (course, seed" in rows["bob"]["tasks"][0]
