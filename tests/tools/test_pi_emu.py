"""The emulated Raspberry Pi (`splitleak pi-emu`): refusals, and the edge node on arm64 Debian
bookworm and trixie under QEMU streaming through Mosquitto on the host to the cloud head.

The end-to-end tests build the root file systems into the default cache folder (kept between
runs on the same machine; from nothing they take a few minutes each). They are skipped, with
the reason, only where the machine cannot run arm64 programs (no root, no binfmt_misc).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from splitleak.broker import capture, wire
from splitleak.cloud import rundir
from splitleak.edge.runtime import MobileStage
from splitleak.tools import cli
from splitleak.tools.deploy.demo import Deployment, PredictionLog
from splitleak.tools.pi import emulator as pi_emu
from tests.conftest import splitleak

FRAMES = 12
# (release, runtime) -> what the edge must report inside: the runtime, numpy's major, Python
VARIANTS = {("bookworm", "litert"): ("ai-edge-litert 2.3.0", "2", "3.11"),
            ("trixie", "litert"): ("ai-edge-litert 2.3.0", "2", "3.13"),
            ("bookworm", "tflite-runtime"): ("tflite-runtime 2.14.0", "1", "3.11")}


def one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_not_root_is_refused_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(pi_emu.os, "geteuid", lambda: 1000)
    err = one_line_error(capsys, ["pi-emu", "build", "--dir", str(tmp_path)])
    assert "needs root" in err and "sudo" in err


def test_no_binfmt_is_refused_with_the_packages_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(pi_emu, "BINFMT", tmp_path)  # no status file: not mounted
    monkeypatch.setattr(pi_emu.subprocess, "run", lambda *a, **k: None)  # mounting fails
    with pytest.raises(pi_emu.EmulationError, match="binfmt_misc is not mounted.*qemu-user-static"):
        pi_emu.ensure_binfmt()
    (tmp_path / "status").write_text("enabled\n")
    with pytest.raises(pi_emu.EmulationError, match="no qemu-aarch64 entry"):
        pi_emu.ensure_binfmt()
    (tmp_path / "qemu-aarch64").write_text("disabled\ninterpreter /x\n")
    with pytest.raises(pi_emu.EmulationError, match="disabled: update-binfmts --enable"):
        pi_emu.ensure_binfmt()


def test_offline_build_names_the_mirror(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(pi_emu, "check_host", lambda: None)
    err = one_line_error(capsys, ["pi-emu", "build", "--dir", str(tmp_path),
                                  "--mirror", "http://127.0.0.1:9/debian"])
    assert "cannot reach the Debian mirror http://127.0.0.1:9/debian" in err and "--mirror" in err


def test_tflite_runtime_on_trixie_and_running_before_building_are_refused(
        monkeypatch, capsys, tmp_path):
    err = one_line_error(capsys, ["pi-emu", "build", "--release", "trixie",
                                  "--runtime", "tflite-runtime"])
    assert "no wheel for Python 3.13" in err
    monkeypatch.setattr(pi_emu, "check_host", lambda: None)
    err = one_line_error(capsys, ["pi-emu", "run", "--dir", str(tmp_path), "--", "true"])
    assert "splitleak pi-emu build --release bookworm --runtime litert" in err


def test_the_host_mirror_comes_from_apt_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n")
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    assert pi_emu.host_mirror([deb822]) == "http://mirror.example/debian"
    assert pi_emu.host_mirror([one_line]) == "http://other.example/debian"
    assert pi_emu.host_mirror([tmp_path / "missing"]) is None


def test_the_cpuinfo_inside_lists_one_cortex_a72_per_cpu(tmp_path):
    pi_emu.write_cpuinfo(tmp_path / "cpuinfo", cpus=3)
    text = (tmp_path / "cpuinfo").read_text()
    assert text.count("processor\t:") == 3 and text.count("CPU part\t: 0xd08") == 3


def test_host_files_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    pi = pi_emu.Pi("bookworm", "litert", tmp_path / "cache")
    (pi.root / "etc/ssl/certs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.write_text("untouched")
    (pi.root / "etc/resolv.conf").symlink_to(outside)
    pi_emu._host_files(pi)
    assert outside.read_text() == "untouched"
    assert not (pi.root / "etc/resolv.conf").is_symlink()


# End to end under QEMU.

def _emulation_or_skip() -> None:
    try:
        pi_emu.check_host()
    except pi_emu.EmulationError as exc:
        pytest.skip(f"this machine cannot run arm64 programs: {exc}")


def int8_on_x86(runtime: str, model, images, folder) -> np.ndarray:
    """The int8 stage's raw outputs on this x86 machine with the same runtime as the Pi: LiteRT
    here, tflite-runtime in a venv of the fallback extra (the runtimes' int8 kernels round
    differently; one runtime gives the same bytes on both architectures)."""
    if runtime == "litert":
        stage = MobileStage(model)
        return np.stack([stage.run_raw(image) for image in images])
    venv = folder / "x86-tflite-runtime"
    if not (venv / "bin/python").exists():
        (wheel,) = pi_emu.Pi("bookworm", runtime).root.glob("opt/splitleak/wheels/splitleak-*.whl")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([venv / "bin/pip", "install", "-q", f"{wheel}[edge-tflite-runtime]"],
                       check=True)
    np.save(folder / "images.npy", images)
    script = ("import sys, numpy as np; from splitleak.edge.runtime import MobileStage as M; "
              "s = M(sys.argv[1]); assert type(s._interp).__module__.startswith('tflite_runtime'); "
              "np.save(sys.argv[3], np.stack([s.run_raw(i) for i in np.load(sys.argv[2])]))")
    subprocess.run([venv / "bin/python", "-c", script, model, folder / "images.npy",
                    folder / "out.npy"], check=True)
    return np.load(folder / "out.npy")


def stream(dep, node: str, model, source: str, pi=None) -> dict[int, int]:
    """Stream FRAMES frames from `node` (inside `pi` if given); its labels by sequence number."""
    answers = PredictionLog(dep.broker.url, node)
    dep.callback(answers.close)
    args = ["edge", "--model", model, *dep.login(), "--node-id", node, "--source", source,
            "--count", FRAMES, "--json"]
    if pi is not None:
        folders = [str(model.parent), source.partition(":")[2]]
        args = ["pi-emu", "run", "--release", pi.release, "--runtime", pi.runtime,
                *(f"--bind={f}" for f in folders), "--", "splitleak", *args]
    edge = dep.start(node, *args)
    assert edge.wait(600) == 0, edge.tail()
    assert edge.json()["acknowledged"] == FRAMES
    assert answers.wait_for(FRAMES, timeout=60), f"{node}: {len(answers.labels)} predictions"
    return answers.labels


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("release,runtime", list(VARIANTS))
def test_the_emulated_pi_streams_what_the_x86_edge_streams(
        release, runtime, tiny_run, lite, png_source, tmp_path):
    _emulation_or_skip()
    built = splitleak("pi-emu", "build", "--release", release, "--runtime", runtime, "--json",
                      timeout=1800)
    assert built.returncode == 0, built.stderr[-2000:]
    info = json.loads(built.stdout.splitlines()[-1])
    runtime_name, numpy_major, python = VARIANTS[release, runtime]
    assert "tensorflow" not in {name.lower() for name in info["wheels"]}
    print(f"{release}/{runtime} wheels: {info['wheels']}")

    pi = pi_emu.Pi(release, runtime)
    model = rundir.mobile(tiny_run)
    checked = splitleak("pi-emu", "run", "--release", release, "--runtime", runtime,
                        f"--bind={tiny_run}", "--", "splitleak", "edge", "--check", "--model",
                        model, "--json", timeout=600)
    assert checked.returncode == 0, checked.stderr[-2000:]
    report = json.loads(checked.stdout[checked.stdout.index("{"):])
    assert report["runtime"] == runtime_name and report["machine"] == "aarch64"
    assert report["numpy"].split(".")[0] == numpy_major
    assert report["python"].rsplit(".", 1)[0] == python
    assert "QEMU" in report["emulated"] and report["sha256"] == MobileStage(model).sha256
    print(f"{release}/{runtime} edge --check: {report['runtime']}, numpy {report['numpy']}, "
          f"Python {report['python']}, 1 thread median {report['threads']['1']['median_ms']} ms "
          "(emulated)")

    labels = lite.labels(lite.val)[:FRAMES]
    record = tmp_path / "capture.txt"
    with Deployment(tiny_run, "mosquitto") as dep:
        dep.start_cloud()
        spy = dep.start_eavesdropper("--record", record)
        x86 = stream(dep, "x86", model, png_source)
        arm = stream(dep, f"pi-{release}", model, png_source, pi)
        stream(dep, f"pi-{release}-int8", rundir.mobile(tiny_run, int8=True), png_source, pi)
        spy.stop()
    got = {node: np.array([seq_labels[s] for s in range(FRAMES)])
           for node, seq_labels in (("x86", x86), ("arm", arm))}
    accuracy = {node: float(np.mean(v == labels)) for node, v in got.items()}
    print(f"{release}/{runtime}: accuracy over MQTT x86 {accuracy['x86']:.3f}, emulated "
          f"{accuracy['arm']:.3f}")
    assert np.array_equal(got["x86"], got["arm"]) and accuracy["x86"] == accuracy["arm"]

    frames = {}
    for _, payload in capture.read(record):
        frame = wire.decode(payload)
        frames.setdefault(frame.node_id, {})[frame.seq] = frame
    images = lite.val.images[:FRAMES]
    host = MobileStage(model).run(images)
    published = np.stack([frames[f"pi-{release}"][s].activation for s in range(FRAMES)])
    diff = float(np.abs(published - host).max())
    print(f"{release}/{runtime}: float32 activations, max |emulated - x86| = {diff:.2e}")
    assert diff <= 1e-4
    raw = np.stack([frames[f"pi-{release}-int8"][s].activation for s in range(FRAMES)])
    host_int8 = int8_on_x86(runtime, rundir.mobile(tiny_run, int8=True), images, tmp_path)
    print(f"{release}/{runtime}: int8 activations differ from x86 ({runtime}) in "
          f"{int(np.sum(raw != host_int8))} of {raw.size} values")
    if runtime != "litert":  # the same model's int8 bytes from the two runtimes
        litert = int8_on_x86("litert", rundir.mobile(tiny_run, int8=True), images, tmp_path)
        steps = np.abs(raw.astype(int) - litert.astype(int))
        print(f"{release}/{runtime}: int8 activations differ from x86 LiteRT in "
              f"{int(np.sum(steps > 0))} of {raw.size} values, by up to {steps.max()} steps")
    assert raw.dtype == np.int8 and np.array_equal(raw, host_int8)


@pytest.mark.slow
@pytest.mark.e2e
def test_tflite_runtime_under_numpy_2_fails_at_edge_check_on_the_emulated_pi(tiny_run):
    """A real arm64 install of tflite-runtime 2.14 beside numpy 2 (what pip resolves when
    nothing pins numpy) stops at `edge --check` with one line."""
    _emulation_or_skip()
    built = splitleak("pi-emu", "build", "--runtime", "tflite-runtime", timeout=1800)
    assert built.returncode == 0, built.stderr[-2000:]
    venv = f"{pi_emu.VENV_ROOT}/tflite-runtime-numpy2"
    wheel = f"{pi_emu.VENV_ROOT}/wheels/splitleak-*.whl"
    pip = f"{venv}/bin/pip install -q --cert /etc/ssl/certs/{pi_emu.HOST_CA}"
    made = splitleak("pi-emu", "run", "--runtime", "tflite-runtime", "--", "sh", "-c",
                     f"(test -x {venv}/bin/splitleak || (python3 -m venv {venv} && {pip} {wheel} "
                     f"tflite-runtime==2.14.0 'numpy>=2')) && "  # the venv is kept between runs:
                     f"{pip} --no-deps --force-reinstall {wheel}",  # this checkout's splitleak
                     timeout=900)
    assert made.returncode == 0, made.stderr[-2000:]
    checked = splitleak("pi-emu", "run", "--runtime", "tflite-runtime", f"--bind={tiny_run}",
                        "--", f"{venv}/bin/splitleak", "edge", "--check", "--model",
                        rundir.mobile(tiny_run), timeout=600)
    err = checked.stderr.strip()
    print(f"tflite-runtime + numpy 2, emulated bookworm: exit {checked.returncode}: {err}")
    assert checked.returncode == 2 and "\n" not in err
    assert "tflite-runtime 2.14.0 does not work with numpy 2." in err and "numpy<2" in err
