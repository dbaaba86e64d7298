"""The edge node must run on a device without TensorFlow (a Pi cannot carry it)."""

import subprocess
import sys

import numpy as np

from splitleak.cloud import rundir

BLOCK_TF = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith(("tensorflow.", "keras")):
            raise ImportError(f"{name} is blocked: the edge must not need it")
sys.meta_path.insert(0, Block())
"""

RUN_STAGE = BLOCK_TF + """
import numpy as np
from splitleak.edge import omniglot, runtime
import splitleak.edge
stage = runtime.MobileStage(sys.argv[1])
images = np.load(sys.argv[2])
np.save(sys.argv[3], stage.run(images))
assert not [m for m in sys.modules if m.startswith(("tensorflow", "keras"))]
print("ran without tensorflow:", stage.output_shape)
"""


def test_edge_runs_tflite_with_tensorflow_unimportable(tiny_run, lite, tmp_path):
    images = lite.test.images[:4]
    np.save(tmp_path / "in.npy", images)
    for name in (rundir.MOBILE_TFLITE, rundir.MOBILE_INT8):
        result = subprocess.run(
            [sys.executable, "-c", RUN_STAGE, tiny_run / name, tmp_path / "in.npy",
             tmp_path / "out.npy"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "ran without tensorflow: (1, 1, 32)" in result.stdout
        assert np.load(tmp_path / "out.npy").shape == (4, 1, 1, 32)


def test_block_really_blocks():
    result = subprocess.run([sys.executable, "-c", BLOCK_TF + "import tensorflow"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "is blocked" in result.stderr


BLOCK_EXTRAS = """
import sys
BLOCKED = ("tensorflow", "keras", "cryptography", "amqtt", "matplotlib", "tensorflow_datasets",
           "tensorflow_privacy", "dp_accounting", "mkdocs")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: the edge install does not have it")
sys.meta_path.insert(0, Block())
from splitleak.tools.cli import build_parser
args = build_parser().parse_args(["edge", "--model", "m.tflite", "--check"])
print("parsed", args.command)
"""


def test_the_command_line_loads_with_the_edge_install_alone():
    """`splitleak` on a device: every command's parser loads without the training, broker and
    docs extras (they are imported only by the commands that use them)."""
    result = subprocess.run([sys.executable, "-c", BLOCK_EXTRAS], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "parsed edge" in result.stdout, result.stderr[-3000:]
