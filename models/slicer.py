"""The width slicer (numpy + onnx, no PyTorch) lives in the trainer package:
models/edgeslim_train/edgeslim_train/slicer.py. This module is that module, so `import slicer`
from models/ (check.py, the CI) works without installing the package."""

import importlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "edgeslim_train"))
sys.modules[__name__] = importlib.import_module("edgeslim_train.slicer")
