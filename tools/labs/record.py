"""`splitleak lab record N`: the figures a lab's instructor notes quote, measured over several
student ids, with the code and machine that measured them.

`figures` reads one finished lab folder (the evidence `lab check` reads), `record` starts, runs,
checks and reads the lab once per student id and writes the lot as JSON, and `table` turns that
JSON into the Markdown table the notes show.
"""

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from splitleak.cloud import artifacts, rundir
from splitleak.tools.labs import checks, evidence, lab
from splitleak.tools.labs.checks import CUTS
from splitleak.tools.labs.evidence import Missing


class _Doc(dict):
    """A JSON object that names its file when a key is missing."""

    def __init__(self, path: Path, items: dict):
        super().__init__(items)
        self.path = path

    def __missing__(self, key):
        raise Missing(f"{self.path} has no {key!r}")


def _wrap(path: Path, obj):
    if isinstance(obj, dict):
        return _Doc(path, {k: _wrap(path, v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_wrap(path, v) for v in obj]
    return obj


def _doc(path: Path, last_line: bool = False) -> _Doc:
    return _wrap(path, evidence.doc(path, last_line))


def _frame_bytes(path: Path) -> int:
    """Bytes per frame of a capture file (`<topic> <hex>` lines), averaged as lab 3's awk does."""
    sizes = [len(line.split(" ", 1)[1]) // 2 for line in path.read_text().splitlines()]
    return round(sum(sizes) / len(sizes))


TOPIC_ORDER = ("status", "activations", "predictions")


def _topics(path: Path) -> str:
    """The kinds of topic (last level) in `mosquitto_sub -F '%t ...'` output."""
    if not path.is_file():
        raise Missing(f"{path} is missing")
    seen = {line.split(" ", 1)[0].rsplit("/", 1)[-1] for line in path.read_text().splitlines()
            if line.strip()}
    if not seen:
        raise Missing(f"{path} is empty")
    order = {t: i for i, t in enumerate(TOPIC_ORDER)}
    return ", ".join(sorted(seen, key=lambda t: (order.get(t, len(order)), t)))


def _accuracy(folder: Path, run: str) -> float:
    return _doc(folder / run / rundir.METRICS)["val_accuracy"]


def _scores(folder: Path, attack: str, v: dict, capture: str = "capture.txt",
            model: str = "target") -> tuple[_Doc, _Doc]:
    """eval.json's scored capture (scored again: evidence.scored_capture) and its
    identification."""
    path = folder / attack / rundir.EVAL
    capture = _wrap(path, evidence.scored_capture(folder, attack, v, capture, model))
    return capture, capture["reconstruction"]["identification"]


# -- the figures of each lab's notes ----------------------------------------------------------

def lab1(folder: Path, v: dict) -> dict:
    cloud = _doc(folder / "cloud.out", last_line=True)
    spy = _doc(folder / "spy.out", last_line=True)
    first = evidence.frames(folder / "capture.txt", v)[0]
    return {
        "target validation accuracy": _accuracy(folder, "target"),
        "cloud: frames accepted": cloud["accepted"],
        "cloud: sequence gaps": cloud["gaps"],
        "cloud: p50 latency (ms)": cloud["latency_ms"]["p50"],
        "bytes per activation frame": _frame_bytes(folder / "capture.txt"),
        "of them activation values": int(first.activation.nbytes),
        "node id characters": len(first.node_id),
        "eavesdropper: frames decoded": spy["frames"],
        "eavesdropper: frames rejected": spy["rejected_total"],
        "topics seen by splitleak/#": _topics(folder / "everything.txt"),
    }


def lab2(folder: Path, v: dict) -> dict:
    decoder = _doc(folder / "attack" / rundir.MANIFEST)
    live = _doc(folder / "live.out", last_line=True)
    capture, ident = _scores(folder, "attack", v)
    rec, base = capture["reconstruction"], capture["baselines"]
    return {
        "target validation accuracy": _accuracy(folder, "target"),
        "decoder: surrogate images": decoder["data"]["images"],
        "decoder: held out": decoder["result"]["val_images"],
        "decoder: epochs run": decoder["result"]["epochs_run"],
        "decoder: held-out MSE": decoder["result"]["val_mse"],
        "live: frames seen": live["seen"],
        "live: frames reconstructed": live["reconstructed"],
        "reconstructions: MSE": rec["mse"],
        "reconstructions: SSIM": rec["ssim"],
        "blank page: MSE": base["blank_page"]["mse"],
        "blank page: SSIM": base["blank_page"]["ssim"],
        "attacker's mean image: MSE": base["attacker_mean_image"]["mse"],
        "attacker's mean image: SSIM": base["attacker_mean_image"]["ssim"],
        "frames scored": capture["n"],
        "top-1 identification": ident["top1"],
        "top-5 identification": ident["top5"],
        "chance top-1": ident["chance_top1"],
        "chance top-5": ident["chance_top5"],
        "median rank": ident["median_rank"],
    }


def lab3(folder: Path, v: dict) -> dict:
    out = {}
    for k in CUTS:
        shape = _doc(folder / f"target-k{k}" / rundir.MANIFEST)["activation"]["shape"]
        evidence.frames(folder / f"capture-k{k}.txt", v, f"target-k{k}")
        capture, ident = _scores(folder, f"attack-k{k}", v, f"capture-k{k}.txt", f"target-k{k}")
        out |= {f"K={k}: activation": "x".join(map(str, shape)),
                f"K={k}: bytes per frame": _frame_bytes(folder / f"capture-k{k}.txt"),
                f"K={k}: validation accuracy": _accuracy(folder, f"target-k{k}"),
                f"K={k}: MSE": capture["reconstruction"]["mse"],
                f"K={k}: top-1": ident["top1"],
                f"K={k}: median rank": ident["median_rank"]}
    return out | {"frames scored": capture["n"], "chance top-1": ident["chance_top1"]}


def lab4(folder: Path, v: dict) -> dict:
    from splitleak.tools.experiments.settings import preset

    eps = _doc(folder / "epsilon.json")["epsilon"]
    path = folder / "sweep" / "results.json"
    done = _doc(path)["settings"]
    sizes = _doc(folder / "sweep.json")
    out = {"task 1: ε (RDP)": eps["rdp"], "task 1: ε (PLD)": eps["pld"]}
    for s in preset("lab"):
        key = replace(s, **sizes).key()
        if key not in done:
            raise Missing(f"{path} has no row for {s.name} (with sweep.json's sizes)")
        r = done[key]
        out[f"{s.name}: accuracy, defended"] = r["accuracy"]
        if s.dp:
            out[f"{s.name}: ε (RDP)"] = r["epsilon"]["rdp"]
            out[f"{s.name}: ε (PLD)"] = r["epsilon"]["pld"]
        out[f"{s.name}: dCor"] = r["dcor"]
        out[f"{s.name}: naive black box top-1"] = r["naive"]["top1"]
        if r.get("adaptive"):
            out[f"{s.name}: SNR"] = r["snr"]
            out[f"{s.name}: adaptive black box top-1"] = r["adaptive"]["top1"]
        if r.get("training_adversary_mse") is not None:
            out[f"{s.name}: training adversary's MSE"] = r["training_adversary_mse"]
            out[f"{s.name}: fresh decoder's MSE"] = r["naive"]["mse"]
        out[f"{s.name}: white box top-1"] = r["whitebox"]["top1"]
    first = done[replace(preset("lab")[0], **sizes).key()]
    return out | {"black box: test images": first["naive"]["n"],
                  "white box: images": first["whitebox"]["n"],
                  "activation std (none)": first["activation_std"],
                  "mean image's MSE": first["naive"]["mean_image_mse"]}


def lab5(folder: Path, v: dict) -> dict:
    guess = _doc(folder / "guess.json")
    stolen = _doc(folder / "stolen.out", last_line=True)
    evidence.frames(folder / "stolen.txt", v)
    out = {"guesses until found": guess["tried"], "candidates": guess["candidates"],
           "guessing (seconds)": guess["seconds"], "guesses per second": guess["guesses_per_s"],
           "stolen credential: frames seen": stolen["seen"],
           "stolen credential: frames reconstructed": stolen["reconstructed"]}
    for row in _doc(folder / "network" / "results.json")["rows"]:
        p = row["profile"]
        out |= {f"{p}: sent": row["sent"], f"{p}: cloud": row["cloud"]}
        for name, e in row["eavesdroppers"].items():
            scored = e.get("reconstruction")
            out |= {f"{p}, {name}: frames": e["frames"],
                    f"{p}, {name}: status": e["status"],
                    f"{p}, {name}: top-1": scored["top1"] if scored else None}
    return out


def lab6(folder: Path, v: dict) -> dict:
    out = {}
    for name, port in (("plain", v["port"]), ("tls", v["tls_port"])):
        s, _ = evidence.sniffed(folder / f"{name}.pcap", port)
        out |= {f"{name}: MQTT packets read": s["mqtt_packets"], f"{name}: frames": s["frames"],
                f"{name}: logins read": len(s["credentials"]),
                f"{name}: passwords read": sum(1 for c in s["credentials"] if c["password"]),
                f"{name}: unreadable segments": s["unreadable"]}
    recon = len(list((folder / "recon" / v["node"]).glob("*.png")))
    return out | {"plain: reconstructions saved": recon}


FIGURES = {1: lab1, 2: lab2, 3: lab3, 4: lab4, 5: lab5, 6: lab6}


def figures(n: int, folder: Path) -> dict:
    """{label: value} of every figure lab n's instructor notes quote, from a folder in which
    `lab run n` has completed. ValueError naming the file when evidence is missing or bad."""
    lab.check_lab(n)
    folder = Path(folder)
    try:
        v = _doc(folder / "lab.json")
        if v["lab"] != n:
            raise Missing(f"{folder} holds lab {v['lab']}, not lab {n}")
        return FIGURES[n](folder, v)
    except Missing as exc:
        raise ValueError(f"lab {n}: {exc}") from None
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError, OSError) as exc:
        raise ValueError(f"lab {n}: malformed evidence in {folder} ({exc!r}): "
                         f"run `splitleak lab run {n}` again") from None


# -- recording over several students ----------------------------------------------------------

@contextmanager
def _this_python_first():
    """The handout's `splitleak` and `python3` are this environment's, activated or not."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old


def command(n: int, students: list[str], out: Path, size: str) -> str:
    """The command that records the same figures again."""
    from splitleak.tools.experiments.results import shown

    return (f"splitleak lab record {n} --students {' '.join(students)} --out {shown(out)}"
            + (f" --size {size}" if size != "full" else ""))


def stamp() -> dict:
    """The commit (and whether tracked .py files differ from it), packages, machine, date; the
    modules on the lab's path are added when it has run (`traced`)."""
    from splitleak.tools.experiments import provenance

    return {**provenance.commit(), "versions": artifacts.versions(),
            "machine": provenance.machine(), "date": provenance.now()}


def traced(trace: Path) -> dict:
    """The hash of each module the lab's commands and this process ran (every `splitleak`
    process appends its modules to `trace`): a later change to any of them makes the record
    stale, a change elsewhere does not."""
    from splitleak.tools.experiments import provenance

    return provenance.path_stamp((), files=provenance.traced(trace))


@contextmanager
def _tracing(trace: Path):
    """Every splitleak process started inside appends the modules it ran to `trace`."""
    from splitleak.tools.experiments.provenance import TRACE

    old = os.environ.get(TRACE)
    os.environ[TRACE] = str(trace)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRACE, None)
        else:
            os.environ[TRACE] = old


TRACE_FILE = "modules.txt"  # in the work folder: the modules the lab's commands ran


def record(n: int, students: list[str], out: Path, size: str = "full", work: Path | None = None,
           omniglot_dir=None) -> dict:
    """Start, run (timed), check and read lab n once per student id, each in a fresh folder
    under `work` (default: a temporary one); write the figures with their provenance to `out`."""
    lab.check_lab(n)
    if not students or len(set(students)) != len(students):
        raise ValueError(f"--students: expected distinct student ids, got {students}")
    for student in students:
        lab.variant(n, student, size)  # a bad id or size fails before anything runs
    out = Path(out)
    result = {"lab": n, "size": size, "students": {}, "command": command(n, students, out, size),
              "provenance": stamp()}
    base = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix=f"splitleak-lab{n}-"))
    (base / TRACE_FILE).unlink(missing_ok=True)  # another record's modules are not this lab's
    for i, student in enumerate(students, 1):
        folder = base / f"lab{n}-{student}"
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{folder} is not empty: record into a fresh folder")
        print(f"lab {n}, student {student} ({i}/{len(students)}): {folder}", file=sys.stderr,
              flush=True)
        lab.start(n, folder, student, size=size, omniglot_dir=omniglot_dir)
        began = time.monotonic()
        with _this_python_first(), _tracing(base / TRACE_FILE):
            code = lab.run_script(n, folder)
        seconds = round(time.monotonic() - began, 1)
        if code:  # the folder stays, to look into
            raise RuntimeError(f"lab {n} for {student}: a command exited {code} (in {folder})")
        failed = [f"task {k}: {hint}" for k, hint in checks.run(n, folder, lab.load(folder))
                  if hint]
        if failed:
            raise RuntimeError(f"lab {n} for {student}: its check failed (in {folder}): "
                               + "; ".join(failed))
        found = figures(n, folder)
        first = next(iter(result["students"].values()), None)
        if first and list(first["figures"]) != list(found):
            raise RuntimeError(f"lab {n} for {student}: other figures than for {students[0]}: "
                               f"{sorted(set(found) ^ set(first['figures']))}")
        result["students"][student] = {"figures": found, "seconds": seconds}
        print(f"lab {n}, student {student}: {seconds:.0f} s, {len(found)} figures",
              file=sys.stderr, flush=True)
    result["provenance"] |= traced(base / TRACE_FILE)
    if work is None:
        shutil.rmtree(base, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return result
