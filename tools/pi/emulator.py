"""An emulated Raspberry Pi: a Debian arm64 userland (bookworm or trixie, the releases under
Raspberry Pi OS 64-bit) whose programs run under QEMU user-mode emulation, registered with the
kernel through binfmt_misc. The edge node is installed in it from this checkout, in a virtual
environment per TFLite runtime, exactly as on a Pi: no TensorFlow.

Layout under the cache folder: `<release>/` is the root file system (debootstrap, minbase),
`<release>/opt/splitleak/<runtime>/` the virtual environment, `<release>-<runtime>.json` the wheel
set that was installed. Commands run in a private mount namespace (`unshare`): /dev, /proc, /sys,
the current folder and every --bind folder appear inside at their host paths, and vanish with
the process. The network is the host's, so a broker on the host's loopback is reachable.
"""

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from splitleak.edge.selfcheck import EMULATED_ENV  # set inside: edge --check labels its timings

# Debian release -> its Python (Raspberry Pi OS 64-bit is built on the same releases).
RELEASES = {"bookworm": "3.11", "trixie": "3.13"}
# --runtime -> the extra of this package that installs it.
RUNTIMES = {"litert": "edge", "tflite-runtime": "edge-tflite-runtime"}
ARCH, QEMU = "arm64", "qemu-aarch64"
# The emulated CPU: a Raspberry Pi 4's Cortex-A72 (QEMU_CPU, and /proc/cpuinfo inside: QEMU 7.2
# shows programs the host's x86 cpuinfo, on which LiteRT's CPU detection segfaults).
CPU, CPU_PART, CPU_FEATURES = "cortex-a72", "0xd08", "fp asimd evtstrm crc32 cpuid"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
SETUP = "apt-get install -y qemu-user-static binfmt-support debootstrap"
VENV_ROOT = "/opt/splitleak"
CPUINFO = "/etc/splitleak-cpuinfo"  # bound over /proc/cpuinfo inside
HOST_CA = "splitleak-host-ca.pem"  # the host's CA bundle, in /etc/ssl/certs inside, for pip
CHECKOUT = Path(__file__).resolve().parents[2]


class EmulationError(OSError):
    """What is missing for the emulation, with the fix: printed as one line by the CLI."""


def default_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "splitleak" / "pi-emu"


def check_choice(release: str, runtime: str) -> None:
    if release not in RELEASES:
        raise ValueError(f"unknown release {release!r}; expected one of {', '.join(RELEASES)}")
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if runtime == "tflite-runtime" and RELEASES[release] != "3.11":
        raise ValueError(f"tflite-runtime 2.14 has no wheel for Python {RELEASES[release]} "
                         f"({release}): use --runtime litert, or --release bookworm")


def check_host() -> None:
    """Root, the tools, and a binfmt_misc entry that runs arm64 programs (registered if need be)."""
    if platform.system() != "Linux":
        raise EmulationError(f"pi-emu needs Linux (chroot, binfmt_misc), not {platform.system()}")
    if os.geteuid() != 0:
        raise EmulationError("pi-emu needs root (debootstrap, chroot and mounts): run it with sudo")
    for tool in ("debootstrap", "unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            raise EmulationError(f"{tool} not found: {SETUP}")
    if platform.machine() != "aarch64":
        ensure_binfmt()


def ensure_binfmt() -> None:
    """Mount binfmt_misc and enable the qemu-aarch64 entry; EmulationError saying why not."""
    entry = BINFMT / QEMU
    if not (BINFMT / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                       capture_output=True)
    if not entry.exists() and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", QEMU], capture_output=True)
    if not entry.exists():
        where = ("binfmt_misc is not mounted and could not be mounted (in a container the host "
                 "must provide it)" if not (BINFMT / "status").exists()
                 else f"binfmt_misc has no {QEMU} entry")
        raise EmulationError(f"cannot run arm64 programs: {where}; {SETUP}")
    if entry.read_text().splitlines()[0].strip() != "enabled":
        raise EmulationError(f"the binfmt_misc entry {entry} is disabled: "
                             f"update-binfmts --enable {QEMU}")


def host_mirror(paths=None) -> str | None:
    """The Debian mirror the host's apt uses (deb822 or one-line sources), if any."""
    if paths is None:
        paths = [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
                 Path("/etc/apt/sources.list")]
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            uris = (words[1:] if words[:1] == ["URIs:"]
                    else [w for w in words[1:] if "://" in w] if words[:1] == ["deb"] else [])
            for uri in uris:
                if uri.rstrip("/").endswith("/debian"):
                    return uri.rstrip("/")
    return None


def check_mirror(mirror: str, release: str) -> None:
    """Fetch the release's Release file: a clear error when offline."""
    url = f"{mirror}/dists/{release}/Release"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            response.read(64)
    except OSError as exc:
        raise EmulationError(f"cannot reach the Debian mirror {mirror} ({exc}): building the "
                             "emulated Pi needs Debian's packages and PyPI (offline? pass "
                             "--mirror URL for a reachable mirror)") from None


class Pi:
    """One emulated Pi: a release's root file system with a runtime's virtual environment."""

    def __init__(self, release: str = "bookworm", runtime: str = "litert", directory=None):
        check_choice(release, runtime)
        self.release, self.runtime = release, runtime
        self.directory = Path(directory or default_dir()).resolve()
        self.root = self.directory / release
        self.venv = f"{VENV_ROOT}/{runtime}"
        self.wheels_file = self.directory / f"{release}-{runtime}.json"

    def __str__(self) -> str:
        return f"emulated Pi ({self.release} arm64, {self.runtime})"

    @property
    def base_ready(self) -> bool:
        return (self.root / ".splitleak-base").is_file()

    @property
    def ready(self) -> bool:
        return self.base_ready and (self.root / self.venv.lstrip("/") / "bin/splitleak").exists()

    def label(self) -> str:
        return (f"QEMU user-mode {ARCH}, {CPU}, on {platform.machine()} (Debian {self.release}): "
                "emulation speed, not a Pi's")

    def command(self, argv, binds=(), cwd=None, env=None) -> list[str]:
        """argv run inside the Pi in a private mount namespace, as a host command line."""
        cwd = str(Path(cwd or os.getcwd()).resolve())
        mounts = ["set -e", f"r={shlex.quote(str(self.root))}",
                  'mount --rbind /dev "$r/dev"', 'mount -t proc proc "$r/proc"',
                  'mount --rbind /sys "$r/sys"',
                  f'mount --bind "$r"{CPUINFO} "$r/proc/cpuinfo"']
        data = os.environ.get("SPLITLEAK_OMNIGLOT_DIR")  # passed in: its folder too
        binds = [*binds, data] if data and Path(data).is_dir() else binds
        for folder in dict.fromkeys([cwd, *(str(Path(b).resolve()) for b in binds)]):
            if folder == "/":  # the Pi's own root stays
                continue
            q = shlex.quote(folder)
            mounts += [f'mkdir -p "$r"{q}', f'mount --bind {q} "$r"{q}']
        write_cpuinfo(self.root / CPUINFO.lstrip("/"))
        inside = {"PATH": f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root",
                  "LANG": "C.UTF-8", "QEMU_CPU": CPU, EMULATED_ENV: self.label(),
                  **passed_env(), **(env or {})}
        enter = ["chroot", str(self.root), "/usr/bin/env", "-i",
                 *(f"{k}={v}" for k, v in inside.items()),
                 "/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]
        script = "\n".join(mounts + ["exec " + shlex.join(enter)])
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]

    def output(self, argv, env=None) -> str:
        """What argv prints inside (stdout); EmulationError with its last lines if it fails."""
        done = subprocess.run(self.command(argv, env=env), capture_output=True, text=True)
        if done.returncode:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise EmulationError(f"{shlex.join(argv)} failed inside the {self} "
                                 f"(exit {done.returncode}): {tail}")
        return done.stdout

    def check_ready(self) -> None:
        if not self.ready:
            raise EmulationError(f"no {self} in {self.directory}: run `splitleak pi-emu build "
                                 f"--release {self.release} --runtime {self.runtime}"
                                 + (f" --dir {self.directory}" if self.directory != default_dir()
                                    else "") + "` first")


def write_cpuinfo(path: Path, cpus: int | None = None) -> None:
    """/proc/cpuinfo as a Pi 4 shows it, one entry per host CPU (what /sys inside lists)."""
    entry = ("processor\t: {}\nBogoMIPS\t: 108.00\nFeatures\t: " + CPU_FEATURES +
             "\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
             "CPU part\t: " + CPU_PART + "\nCPU revision\t: 3\n\n")
    path.write_text("".join(entry.format(i) for i in range(cpus or os.cpu_count() or 1))
                    + "Model\t\t: emulated Raspberry Pi 4 (splitleak pi-emu)\n")


def passed_env() -> dict[str, str]:
    """Host variables a command inside needs: splitleak's own and pip's network settings."""
    keep = {k: v for k, v in os.environ.items()
            if k.startswith("SPLITLEAK_") or k.lower() in ("http_proxy", "https_proxy", "no_proxy")
            or k in ("PIP_INDEX_URL", "PIP_DEFAULT_TIMEOUT", "TERM")}
    keep.pop(EMULATED_ENV, None)
    return keep


def build(pi: Pi, mirror: str | None = None, source=CHECKOUT, log=print) -> dict:
    """Make the Pi ready: the root file system once (cached), then the virtual environment with
    this checkout's wheel and its extra, pip check, and the installed wheel set (returned)."""
    check_host()
    if not (Path(source) / "pyproject.toml").is_file():
        raise EmulationError(f"{source} is not a splitleak checkout (no pyproject.toml): "
                             "pi-emu build installs the edge node from one")
    pi.directory.mkdir(parents=True, exist_ok=True)
    if not pi.base_ready:
        _bootstrap(pi, mirror or host_mirror(), log)
    _host_files(pi)

    def run(argv, what):  # pip reaches PyPI through the host's CA bundle
        log(f"pi-emu {pi.release}/{pi.runtime}: {what}")
        pi.output(argv, env={"PIP_CERT": f"/etc/ssl/certs/{HOST_CA}",
                             "PIP_DISABLE_PIP_VERSION_CHECK": "1"})

    if not (pi.root / pi.venv.lstrip("/") / "bin/python").exists():
        run(["python3", "-m", "venv", pi.venv], "virtual environment")
    wheel = _wheel(source, pi.root / VENV_ROOT.lstrip("/") / "wheels")
    inside = f"{VENV_ROOT}/wheels/{wheel.name}"
    run(["pip", "install", "-q", f"{inside}[{RUNTIMES[pi.runtime]}]"],
        f"pip install splitleak[{RUNTIMES[pi.runtime]}]")
    run(["pip", "install", "-q", "--force-reinstall", "--no-deps", inside], "this checkout's code")
    run(["pip", "check"], "pip check")
    listed = json.loads(pi.output(["pip", "list", "--format", "json"]))
    wheels = {p["name"]: p["version"] for p in listed}
    if any(name.lower() == "tensorflow" for name in wheels):
        raise EmulationError("TensorFlow was installed into the emulated edge: the edge extra "
                             "must not need it")
    python = pi.output(["python", "-c", "import platform; print(platform.python_version())"])
    info = {"release": pi.release, "python": python.strip(), "runtime": pi.runtime,
            "extra": RUNTIMES[pi.runtime], "machine": ARCH, "wheels": wheels}
    pi.wheels_file.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _bootstrap(pi: Pi, mirror: str | None, log) -> None:
    """debootstrap the release into <release>.partial, then move it into place."""
    if mirror:
        check_mirror(mirror, pi.release)
    partial = pi.root.with_name(pi.release + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    logfile = pi.directory / f"{pi.release}-debootstrap.log"
    log(f"pi-emu: debootstrap {pi.release} {ARCH} (minbase, python3) into {pi.root}: a few "
        f"minutes; log in {logfile}")
    cmd = ["unshare", "--mount", "--propagation", "private",  # its /proc, /sys mounts die with it
           "debootstrap", f"--arch={ARCH}", "--variant=minbase",
           "--include=python3,python3-venv,python3-pip,ca-certificates", pi.release, str(partial)]
    with logfile.open("w") as out:
        code = subprocess.run(cmd + ([mirror] if mirror else []), stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code:
        lines = logfile.read_text(errors="replace").strip().splitlines()
        raise EmulationError(f"debootstrap {pi.release} failed (exit {code}): "
                             f"{lines[-1] if lines else 'no output'} (full log: {logfile})")
    shutil.rmtree(pi.root, ignore_errors=True)
    partial.rename(pi.root)
    (pi.root / ".splitleak-base").write_text(f"{pi.release} {ARCH} minbase\n")


def _host_files(pi: Pi) -> None:
    """The host's resolver configuration and CA bundle, so that pip reaches PyPI from inside."""
    copies = {Path("/etc/resolv.conf"): pi.root / "etc/resolv.conf",
              Path("/etc/ssl/certs/ca-certificates.crt"): pi.root / "etc/ssl/certs" / HOST_CA}
    for source, target in copies.items():
        if source.is_file():
            target.unlink(missing_ok=True)  # a symlink there must not send the copy to the host
            shutil.copyfile(source, target)


def _wheel(source, folder: Path) -> Path:
    """This checkout as a wheel, built on the host (pure Python), placed in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                               "--wheel-dir", tmp, str(source)], capture_output=True, text=True)
        if done.returncode:
            raise EmulationError(f"could not build the splitleak wheel from {source}: "
                                 + " | ".join(done.stderr.strip().splitlines()[-3:]))
        (wheel,) = Path(tmp).glob("splitleak-*.whl")
        for old in folder.glob("splitleak-*.whl"):
            old.unlink()
        return Path(shutil.copy2(wheel, folder))
