"""Export: switchable BN folded into the ONNX weights (full width) and `per_width` (the rest);
the manifest passes models/check.py's checks; the slicer reproduces PyTorch at every width
configuration; the QDQ copy holds standard ops and the same manifest."""

import itertools
import random

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgeslim_train import export, recipe, slicer
from tiny import W, TinyDense, randomize_bn

FIXED = ["s1.skip.conv", "a.head", "b.head"]
METRICS = {"a": "miou", "b": "rmse"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = TinyDense()
    randomize_bn(net)
    # a few sandwich steps so weights are not at their initial values
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    x = torch.rand(8, 1, 16, 16)
    rng = random.Random(0)

    def gt(outs):
        return outs[0].square().mean() + (outs[1] - 0.3).abs().mean()

    def distill(outs, t):
        return sum((o - tt).square().mean() for o, tt in zip(outs, t))

    for _ in range(3):
        opt.zero_grad()
        recipe.sandwich_step(net, x, gt, distill, teacher=lambda o: o.detach(), rng=rng)
        opt.step()
    calib = np.random.RandomState(1).rand(16, 1, 16, 16).astype(np.float32)
    recipe.recalibrate_bn(net, calib, bs=8)
    d = tmp_path_factory.mktemp("exp")
    path, qpath = str(d / "tiny.onnx"), str(d / "tiny_qdq.onnx")
    model, man = export.export(net, (1, 16, 16), path, qpath, calib, metrics=METRICS,
                               fixed_channels=FIXED, roles=net.roles)
    return net, onnx.load(path), man, onnx.load(qpath), calib


def test_manifest_content(exported):
    net, model, man, _, _ = exported
    assert man["format"] == "edgeslim.manifest/1"
    assert [s["role"] for s in man["segments"]] == ["encoder", "encoder", "decoder", "decoder"]
    assert [t["metric"] for t in man["tasks"]] == ["miou", "rmse"]
    assert sorted(man["fixed_channels"]) == ["/a/head/Conv", "/b/head/Conv", "/s1/skip/conv/Conv"]
    # one per_width entry per BN conv (2 per stage + the skip), null at full width
    assert len(man["per_width"]) == 5
    for p in man["per_width"]:
        assert p["widths"][-1] is None and all(e is not None for e in p["widths"][:-1])
    assert slicer.get_manifest(model) == man


def test_manifest_passes_check_py(exported, check):
    _, model, man, qdq, _ = exported
    check.validate_schema(man)
    check.semantic_checks(man, model)
    check.segment_checks(man, model)
    check.segment_checks(slicer.get_manifest(qdq), qdq)
    check.dependency_checks(man, model)
    ops = {n.op_type for n in model.graph.node}
    assert ops <= check.ALLOWED_OPS
    assert {"ConvTranspose", "Resize", "Concat", "Sigmoid"} <= ops


def test_onnx_full_width_equals_pytorch(exported):
    net, model, _, _, calib = exported
    x = calib[:3]
    ref = recipe.predict(net, x, recipe.widest(net))
    got = slicer.run_ort(model, x)
    for t in net.tasks:
        np.testing.assert_allclose(got[t], ref[t], rtol=0, atol=1e-5)


def test_slicer_equals_pytorch_at_every_width_config(exported):
    """4^4 = 256 configs: folded BN (per_width at the narrower widths), first-k slicing of Conv,
    ConvTranspose, the fixed skip and heads, the Concat, all as PyTorch computes them."""
    net, model, _, _, calib = exported
    x = calib[:2]
    worst = 0.0
    for combo in itertools.product(W, repeat=4):
        cfg = dict(zip(net.segments, combo))
        ref = recipe.predict(net, x, cfg)
        sm, info = slicer.slice_model(model, cfg)
        got = slicer.run_ort(sm, x)
        for t in net.tasks:
            assert got[t].shape == ref[t].shape
            worst = max(worst, float(np.abs(got[t] - ref[t]).max()))
    assert worst < 1e-4, worst


def test_per_width_is_not_a_no_op(exported):
    """Ignoring per_width (the full-width fold at a narrow width) gives other outputs: the
    folding test above would catch a wrong per_width."""
    net, model, man, _, calib = exported
    cfg = {s: 0.5 for s in net.segments}
    bare = dict(man)
    bare["per_width"] = []
    sm, _ = slicer.slice_model(model, cfg, manifest=bare)
    got = slicer.run_ort(sm, calib[:2])
    ref = recipe.predict(net, calib[:2], cfg)
    assert float(np.abs(got["a"] - ref["a"]).max()) > 1e-3


def test_dependencies_recorded(exported):
    net, model, man, _, _ = exported
    _, info = slicer.slice_model(model, {s: 1.0 for s in net.segments})
    deps = {n: sorted(d["deps"]) for n, d in info["op_deps"].items()}
    assert deps["/s2/down/conv/Conv"] == ["s1", "s2"]
    assert deps["/a/up/ConvTranspose"] == ["a", "s2"]
    assert deps["/a/fuse/conv/Conv"] == ["a"]  # skip fixed, first in the Concat
    assert deps["/s1/skip/conv/Conv"] == ["s1"]


def test_qdq_copy(exported, check):
    net, model, man, qdq, calib = exported
    assert slicer.get_manifest(qdq) == man
    assert all(n.domain in ("", "ai.onnx") for n in qdq.graph.node)
    assert {n.op_type for n in qdq.graph.node} <= check.ALLOWED_OPS | check.QDQ_EXTRA
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) > 5
    f = slicer.run_ort(model, calib[:4])
    q = slicer.run_ort(qdq, calib[:4])
    for t in net.tasks:
        scale = float(np.abs(f[t]).max())
        assert float(np.abs(q[t] - f[t]).max()) < 0.1 * scale + 1e-3


# ---- hand-built graphs that break the rules


def _graph(nodes, inits, man, out="y", out_c=2):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, out_c, 4, 4])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    export.set_manifest(m, man)
    return m


def _man():
    return {"format": "edgeslim.manifest/1", "channel_rule": {"kind": "ceil"},
            "segments": [{"name": "s1", "node_prefix": "/s1/", "widths": W, "role": "encoder"},
                         {"name": "s2", "node_prefix": "/s2/", "widths": W, "role": "encoder"},
                         {"name": "d", "node_prefix": "/d/", "widths": W}],
            "tasks": [{"name": "d", "outputs": ["y"], "segment": "d", "metric": "accuracy"}]}


def _w(o, i):
    return np.random.RandomState(o * 10 + i).randn(o, i, 1, 1).astype(np.float32)


def test_op_depending_on_two_other_segments_fails(check):
    """A decoder conv reading Add(stage-1 tensor, stage-2 tensor) depends on s1, s2 and d."""
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="/s1/c"),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="/s2/c"),
             helper.make_node("Add", ["a", "b"], ["c"], name="/d/add"),
             helper.make_node("Conv", ["c", "w3"], ["y"], name="/d/head")]
    m = _graph(nodes, {"w1": _w(4, 2), "w2": _w(4, 4), "w3": _w(2, 4)}, _man())
    man = slicer.get_manifest(m)
    check.segment_checks(man, m)  # membership alone is fine
    with pytest.raises(check.CheckFailed, match="depends on the widths"):
        check.dependency_checks(man, m)


def test_slimmed_skip_not_last_in_concat_fails():
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="/s1/c"),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="/s2/c"),
             helper.make_node("Concat", ["a", "b"], ["c"], name="/d/cat", axis=1),
             helper.make_node("Conv", ["c", "w3"], ["y"], name="/d/head")]
    m = _graph(nodes, {"w1": _w(4, 2), "w2": _w(4, 4), "w3": _w(2, 8)}, _man())
    with pytest.raises(slicer.SliceError, match="not last"):
        slicer.slice_model(m, {"s1": 1.0, "s2": 1.0, "d": 1.0})
    # the same skip made fixed-width is accepted, and its consumer depends on d and s2 only
    man = slicer.get_manifest(m)
    man["fixed_channels"] = ["/s1/c"]
    _, info = slicer.slice_model(m, {"s1": 0.25, "s2": 0.5, "d": 1.0}, manifest=man)
    assert sorted(info["op_deps"]["/d/head"]["deps"]) == ["d", "s2"]
    assert info["active"]["c"] == 4 + 2


def test_roles_must_be_a_prefix(check):
    man = _man()
    man["segments"][1]["role"] = "decoder"
    man["segments"][2]["role"] = "encoder"
    m = _graph([helper.make_node("Conv", ["x", "w"], ["y"], name="/d/head")],
               {"w": _w(2, 2)}, man)
    with pytest.raises(check.CheckFailed, match="prefix"):
        check.semantic_checks(man, m)


def test_stage_reading_a_later_stage_fails(check):
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="/s2/c"),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="/s1/c"),
             helper.make_node("Conv", ["b", "w3"], ["y"], name="/d/head")]
    m = _graph(nodes, {"w1": _w(4, 2), "w2": _w(4, 4), "w3": _w(2, 4)}, _man())
    with pytest.raises(check.CheckFailed, match="encoder stage s1"):
        check.segment_checks(slicer.get_manifest(m), m)
