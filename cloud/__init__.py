"""The cloud side: data protocols, the split model, training, TFLite export and the cloud head."""

# The one Python the `train` extra's pins (TensorFlow 2.15.1) install on: training, the cloud head,
# the attacks and the labs need it; the edge node alone runs on any Requires-Python version.
# The Makefile's PYTHON and ruff's target-version repeat it (tests/tools/test_doctor.py checks).
TRAIN_PYTHON = "3.11"
