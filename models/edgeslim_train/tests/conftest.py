import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tiny.py
# the package itself, when the tests run from a checkout without `pip install -e`
sys.path.insert(1, os.path.dirname(HERE))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


@pytest.fixture(scope="session")
def check():
    """models/check.py as a module (its manifest, membership and dependency checks)."""
    path = os.path.join(REPO, "models", "check.py")
    spec = importlib.util.spec_from_file_location("edgeslim_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
