"""Security-class labs: a handout of exact commands per lab, a working folder per student, checks.

A lab is its handout, docs/labs/labN.md: tasks (`## Task k — title (M min)`) whose ```bash
blocks are the commands, in order. `start` writes the folder the commands run in: lab.json
(the variant), lab.env (the variables the commands use) and the student's own inputs. The
variant (seed, port, streamed images, the vendor's password) comes from an HMAC of the student
id under the course key the instructor sets, so students cannot compute each other's; the node
id is the student id's own (`pi-<id>`), so two students never share a node, a topic or a
password. `checks.py` checks a folder against its variant.
"""

import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HANDOUTS = Path(__file__).resolve().parents[2] / "docs" / "labs"
TITLES = {
    1: "The split system and what is on the wire",
    2: "The black-box attack, live: how identifiable are the reconstructions?",
    3: "Where to split: bytes on the wire against what leaks",
    4: "Defences against inversion: DP-SGD, edge noise, NoPeek, attacker-aware training",
    5: "Lock down the broker: weak passwords, TLS and ACLs",
    6: "On the wire: a passive eavesdropper, a password in clear, and TLS",
}
ROOT_LABS = (6,)  # make network namespaces (tools/deploy/netns.py): run as root
# What the commands train and stream. `short` is for CI and for trying a lab out (minutes).
SIZES = {  # LIMIT: images each training run uses (1720: all of them)
    "full": {"EPOCHS": 8, "ATTACK_EPOCHS": 20, "LIMIT": 1720, "FRAMES": 60, "WHITEBOX": 16},
    "short": {"EPOCHS": 1, "ATTACK_EPOCHS": 1, "LIMIT": 64, "FRAMES": 6, "WHITEBOX": 2},
}
LAB_SIZES = {4: {"full": {"LIMIT": 500, "ATTACK_EPOCHS": 12}, "short": {"LIMIT": 48}}}  # lab 4
# trains four targets and five decoders in one command: smaller runs keep it within the lab's time
WORDS = ("123456 password 12345678 qwerty 111111 abc123 letmein admin welcome monkey dragon "
         "iloveyou sunshine princess football master shadow 654321 superman raspberry pi "
         "raspberrypi changeme default root toor guest user test secret camera sensor iot "
         "device edge mqtt broker hello trustno1 starwars baseball whatever freedom computer "
         "internet summer winter autumn spring london berlin paris 2024 2025 2026 pass1234 "
         "admin123 qwerty123 zaq12wsx 1q2w3e4r 7777777 000000 asdfgh").split()


@dataclass
class Task:
    number: int
    title: str
    minutes: int
    text: str  # the task's section of the handout, commands included
    commands: str  # its ```bash blocks, joined


def handout(n: int) -> Path:
    check_lab(n)
    path = HANDOUTS / f"lab{n}.md"
    if not path.is_file():
        raise FileNotFoundError(f"handout {path} is missing: the labs run from a splitleak "
                                "checkout (docs/labs/)")
    return path


def check_lab(n: int) -> int:
    if n not in TITLES:
        raise ValueError(f"unknown lab {n}; expected one of {', '.join(map(str, TITLES))} "
                         "(splitleak lab list)")
    return n


def tasks(n: int) -> list[Task]:
    """The handout's tasks, in order."""
    text = handout(n).read_text(encoding="utf-8")
    heads = list(re.finditer(r"^## Task (\d+) — (.+) \((\d+) min\)$", text, re.M))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else _next_section(text, m.end())
        body = text[m.start():end].strip()
        code = "\n".join(re.findall(r"```bash\n(.*?)```", body, re.S))
        out.append(Task(int(m[1]), m[2], int(m[3]), body, code))
    return out


def _next_section(text: str, start: int) -> int:
    m = re.compile(r"^## ", re.M).search(text, start)
    return m.start() if m else len(text)


def script(n: int) -> str:
    """Every command of lab n, as one bash script run in the lab's folder."""
    return "\n".join(f"# Task {t.number}: {t.title}\n{t.commands}" for t in tasks(n))


def run_script(n: int, folder: Path) -> int:
    """Run lab n's handout commands in its folder, in order, in one bash (set -e): background
    servers are stopped when the script ends. Returns bash's exit status."""
    load(folder, n)
    if n in ROOT_LABS:
        from splitleak.tools.deploy.netns import check_can_make

        check_can_make()  # one line, before any command runs
    text = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script(n)
    return subprocess.run(["bash", "-c", text], cwd=folder).returncode


DEFAULT_COURSE_KEY = "splitleak self-study"  # public: a class sets its own
ENV_COURSE_KEY = "SPLITLEAK_COURSE_KEY"


def course_key(key: str | None = None) -> str:
    """The course key: given, else $SPLITLEAK_COURSE_KEY, else the public self-study one."""
    return key or os.environ.get(ENV_COURSE_KEY) or DEFAULT_COURSE_KEY


def key_id(key: str) -> str:
    """A short public name of a course key (lab.json keeps it; the key itself stays out)."""
    return hashlib.sha256(f"splitleak course key {key}".encode()).hexdigest()[:12]


def _secret(key: str, student: str, purpose: str) -> int:
    return int(hmac.new(key.encode(), f"{purpose}:{student}".encode(), "sha256").hexdigest(), 16)


def vendor_password(student: str, key: str | None = None) -> str:
    """Lab 5's device password: a common word, in the vendor's pattern `<word>-<node id>`.
    The word comes from the course key; the node id makes it unique to the student."""
    word = WORDS[_secret(course_key(key), student, "vendor password") % len(WORDS)]
    return f"{word}-pi-{student}"


def password_check(password: str, salt: str | None = None) -> dict:
    """A salted hash of a password: enough to verify a guess, useless for reading it."""
    salt = salt or secrets.token_hex(16)
    return {"salt": salt, "sha256": hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()}


def variant(n: int, student: str | None, size: str = "full", key: str | None = None) -> dict:
    """The student's variant of lab n: everything the commands and the checks depend on."""
    student = student or "anonymous"
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,60}", student):
        raise ValueError(f"--student {student!r}: expected 1-60 letters, digits or _.@-")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    key = course_key(key)
    h = _secret(key, student, "variant")
    v = {"lab": n, "student": student, "size": size, "course": key_id(key),
         "seed": 1 + h % 99_991, "node": f"pi-{student}", "port": _port(20_000 + h % 20_000),
         **{k.lower(): v for k, v in sizes(n, size).items()}}
    if n == 6:  # its own lab network; its broker's ports are that network's, not this machine's
        from splitleak.tools.deploy.netns import LabNet

        net = LabNet(prefix=f"lab6-{h % 16**6:06x}")
        v |= {"net": net.prefix, "broker_host": net.address("broker"),
              "port": 20_000 + h % 20_000, "tls_port": 20_000 + h % 20_000 + 1}
    return v


def sizes(n: int, size: str) -> dict:
    """What lab n's commands train and stream at this size."""
    return SIZES[size] | LAB_SIZES.get(n, {}).get(size, {})


def _port(preferred: int) -> int:
    """`preferred` if nothing listens there now, else a free one."""
    from splitleak.broker.server import free_port, port_open

    return free_port() if port_open("127.0.0.1", preferred) else preferred


def start(n: int, folder: Path, student: str | None, force: bool = False, size: str = "full",
          omniglot_dir=None, key: str | None = None) -> dict:
    """Prepare `folder` for lab n: lab.json, lab.env, the private images, the lab's inputs."""
    from splitleak.cloud.data import load_source, resolve_dir

    tasks(n)  # the handout exists and parses
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ValueError(f"{folder} is not empty; choose another --dir or pass --force")
    v = variant(n, student, size, key)
    source = resolve_dir(omniglot_dir)
    val = load_source("lite-val", source)  # the device's private inputs: its own task's images
    rng = np.random.default_rng(v["seed"])
    v["images"] = sorted(rng.choice(len(val), v["frames"], replace=False).tolist())
    folder.mkdir(parents=True, exist_ok=True)
    _write_pngs(folder / "private", val[v["images"]])
    if n == 4:
        sweep = {"epochs": v["epochs"], "attack_epochs": v["attack_epochs"], "limit": v["limit"],
                 "whitebox_limit": v["whitebox"], "seed": v["seed"]}
        (folder / "sweep.json").write_text(json.dumps(sweep, indent=1) + "\n")
    if n == 5:  # the attacker's list: common words in the vendor's pattern
        (folder / "wordlist.txt").write_text("".join(f"{w}-{v['node']}\n" for w in WORDS))
        password = vendor_password(v["student"], key)
        v["password_check"] = password_check(password)  # the only trace of it outside vendor/
        vendor = folder / "vendor"  # the device's own storage: it logs in with it
        vendor.mkdir(exist_ok=True)
        from splitleak.broker.profiles import write_private

        write_private(vendor / "password", password + "\n")
    (folder / "lab.json").write_text(json.dumps(v, indent=1))
    (folder / "lab.env").write_text(_env(v, source))
    return v


def _write_pngs(folder: Path, images: np.ndarray) -> None:
    """Omniglot-style PNGs (black ink on white), named in streaming order."""
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for i, img in enumerate(images):
        gray = np.round((1.0 - img[..., 0]) * 255).astype(np.uint8)
        Image.fromarray(gray, mode="L").save(folder / f"{i:03d}.png")


def _env(v: dict, omniglot_dir) -> str:
    values = {"LAB": v["lab"], "STUDENT": v["student"], "SEED": v["seed"], "NODE": v["node"],
              "PORT": v["port"], "BROKER": f"mqtt://127.0.0.1:{v['port']}",
              **{k: v[k.lower()] for k in sizes(v["lab"], v["size"])}}
    if "net" in v:
        values |= {"NET": v["net"], "BROKER_HOST": v["broker_host"], "TLS_PORT": v["tls_port"]}
        del values["BROKER"]
    lines = [f"# splitleak lab {v['lab']}, student {v['student']} ({v['size']} size): "
             "`source lab.env` in every terminal you use for this lab",
             *(f"export {k}={val}" for k, val in values.items())]
    if omniglot_dir:
        lines.append(f"export SPLITLEAK_OMNIGLOT_DIR={omniglot_dir}")
    lines += ["# wait_for FILE TEXT: wait (up to 60 s) until FILE holds TEXT, e.g. a server's "
              "ready line",
              'wait_for() { for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; '
              'sleep 0.1; done; echo "gave up waiting for \'$2\' in $1" >&2; return 1; }']
    return "\n".join(lines) + "\n"


def load(folder: Path, n: int | None = None) -> dict:
    """The variant a lab folder was started with; a clear error for any other folder."""
    path = Path(folder) / "lab.json"
    try:
        v = json.loads(path.read_text())
        lab = v["lab"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{folder} is not a lab folder (no readable lab.json); "
                         "start one with: splitleak lab start N --dir DIR") from None
    if n is not None and lab != n:
        raise ValueError(f"{folder} holds lab {lab}, not lab {n}")
    return v
