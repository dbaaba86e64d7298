"""docs/pi.md: every `splitleak` command in its shell blocks parses with the real CLI (with the
command an emulated Pi runs), and the files it copies exist in the checkout."""

import re
import shlex

from splitleak.tools import cli
from tests.conftest import REPO

GUIDE = REPO / "docs/pi.md"


def shell_lines() -> list[str]:
    """The guide's ```bash blocks, one line per command (backslash continuations joined)."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def test_every_splitleak_command_in_the_guide_parses():
    commands = [shlex.split(line.split("#")[0].strip().removesuffix("&")) for line in shell_lines()
                if re.search(r"bin/splitleak ", line)]
    assert len(commands) >= 4
    parser = cli.build_parser()
    for words in commands:
        argv = words[next(i for i, w in enumerate(words) if w.endswith("bin/splitleak")) + 1:]
        args = parser.parse_args(argv)  # argparse exits on an unknown option or a bad choice
        inner = getattr(args, "argv", [])[1:]  # pi-emu run -- splitleak …: that command too
        if inner[:1] == ["splitleak"]:
            parser.parse_args(inner[1:])


def test_the_files_the_guide_copies_are_in_the_checkout():
    copied = " ".join(line for line in shell_lines() if line.startswith("scp "))
    for path in ("edge/systemd/splitleak-edge.service", "edge/systemd/splitleak-edge.env.example",
                 "edge/systemd/camera.conf"):
        assert path in copied and (REPO / path).is_file()
