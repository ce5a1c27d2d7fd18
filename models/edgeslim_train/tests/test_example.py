"""The README's example runs (shortened) and its exported model slices like PyTorch."""

import importlib.util
import os

import numpy as np

from edgeslim_train import recipe, slicer

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                       "quickstart.py")


def test_quickstart_example(tmp_path):
    spec = importlib.util.spec_from_file_location("quickstart", EXAMPLE)
    qs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qs)
    net, model, man = qs.main(str(tmp_path), steps=20)
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model_qdq.onnx").is_file()
    assert [s["name"] for s in man["segments"]] == ["s1", "s2", "orient", "mask"]
    x, _, _ = qs.bars(4, 2)
    cfg = {"s1": 0.5, "s2": 0.25, "orient": 1.0, "mask": 0.5}
    sm, _ = slicer.slice_model(model, cfg)
    got = slicer.run_ort(sm, x)
    ref = recipe.predict(net, x, cfg)
    for t in net.tasks:
        np.testing.assert_allclose(got[t], ref[t], rtol=0, atol=1e-4)
