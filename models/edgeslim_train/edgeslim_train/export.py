"""Export of a trained slimmable network: the full-width ONNX with switchable BatchNorm folded
(the full width into the weights, the narrower widths as the manifest's `per_width`), the
`edgeslim.manifest` metadata (docs/manifest.md), and the int8 QDQ copy (onnxruntime
`quantize_static`, per-channel int8 weights, uint8 activations, MinMax calibration)."""

import copy
import json

import torch
import torch.nn as nn

from . import slicer
from .recipe import widest
from .slim import CHANNEL_RULE, SlimConv2d

# Ops the edgeslim compiler reads in a float model.onnx (plus Q/DQ in model_qdq.onnx).
ALLOWED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip",
               "Sigmoid", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
               "Concat", "Resize", "Softmax"}


def deploy_copy(net):
    """Full-width copy with each conv's full-width BatchNorm folded into weight and bias."""
    d = copy.deepcopy(net).eval()
    d.set_config(widest(d))
    for mod in d.modules():
        if isinstance(mod, SlimConv2d) and mod.bns is not None:
            bn = mod.bns[-1]
            s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            mod.weight.data = (mod.weight.double() * s.view(-1, 1, 1, 1)).float()
            mod.bias = nn.Parameter((bn.bias.double() - bn.running_mean.double() * s).float())
            mod.bns = None
    return d


def per_width_entries(net, conv_node_of):
    """Switchable BN of each conv as manifest per_width entries, relative to the full-width fold
    in the ONNX weights: at width i the layer computes with W[o] * cs[o] and bias[o],
    cs = s_i / s_full, bias = beta_i - mean_i * s_i, s = gamma / sqrt(var + eps)."""
    out = []
    for name, mod in net.named_modules():
        if not (isinstance(mod, SlimConv2d) and mod.bns is not None):
            continue
        full = mod.bns[-1]
        s_full = (full.weight.double() / torch.sqrt(full.running_var.double() + full.eps))
        entries = []
        for i, bn in enumerate(mod.bns):
            if i == len(mod.bns) - 1:
                entries.append(None)
                continue
            k = bn.num_features
            s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            cs = (s / s_full[:k]).detach()
            b = (bn.bias.double() - bn.running_mean.double() * s).detach()
            entries.append({"channel_scale": [float(v) for v in cs],
                            "bias": [float(v) for v in b]})
        out.append({"node": conv_node_of[name + ".weight"], "widths": entries})
    return out


def export_onnx(net, in_shape, path, tasks):
    """Export the folded full-width copy (legacy TorchScript exporter, opset 13, batch 1, input
    `x`, one output per task) to `path`. Constant nodes become initializers; each weight and
    bias initializer is renamed `<node name>/W`, `<node name>/B` (others `<node>/in<pos>`).
    Returns (ModelProto, {parameter name: node name}, the deployed copy). The model is not
    saved again here: add the manifest, then save."""
    import onnx
    from onnx import numpy_helper

    d = deploy_copy(net)
    d.exporting = True
    x0 = torch.zeros((1,) + tuple(in_shape))
    torch.onnx.export(d, (x0,), path, dynamo=False, opset_version=13, input_names=["x"],
                      output_names=list(tasks), do_constant_folding=True)
    m = onnx.load(path)
    g = m.graph
    # Constant nodes (Clip bounds, Resize scales) -> initializers; Identity nodes of an
    # initializer (the exporter's de-duplication of equal parameters, e.g. all-zero biases)
    # -> a copy of it under the Identity's output name.
    keep = []
    init_of = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            t = onnx.numpy_helper.to_array(n.attribute[0].t)
            g.initializer.append(numpy_helper.from_array(t, n.output[0]))
        elif n.op_type == "Identity" and n.input[0] in init_of:
            t = numpy_helper.to_array(init_of[n.input[0]])
            g.initializer.append(numpy_helper.from_array(t, n.output[0]))
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    # Name each weight/bias initializer after the node that uses it (so the DequantizeLinear
    # nodes the quantizer adds for weights also carry the node's module scope).
    users = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    conv_node_of = {}
    rename = {}
    for t in g.initializer:
        us = users.get(t.name, [])
        if len(us) == 1:
            n = us[0]
            pos = list(n.input).index(t.name)
            if n.op_type in ("Conv", "Gemm", "ConvTranspose") and pos in (1, 2):
                conv_node_of[t.name] = n.name
                rename[t.name] = f"{n.name}/{'W' if pos == 1 else 'B'}"
            else:
                rename[t.name] = f"{n.name}/in{pos}"
    for t in g.initializer:
        if t.name in rename:
            t.name = rename[t.name]
    for n in g.node:
        for j, i in enumerate(n.input):
            if i in rename:
                n.input[j] = rename[i]
    return m, conv_node_of, d


def make_manifest(model, net, per_width, metrics=None, fixed_channels=(), roles=None):
    """The manifest of `net`: one segment per `net.segments` entry, node prefix `/<segment>/`
    (PyTorch's exporter scopes attribute `self.enc1` and `ModuleDict` entry `["seg"]` so), with
    `role` when `roles` ({segment: "encoder"|"decoder"}) is given; one task per `net.tasks`
    entry computed in the segment of its name, `metric` from `metrics` (default accuracy).
    Every ONNX node must lie under exactly its segment's prefix (nothing falls to the default)."""
    tasks = net.tasks
    segments = []
    for s in net.segments:
        e = {"name": s, "node_prefix": f"/{s}/", "widths": net.widths[s]}
        if roles is not None:
            e["role"] = roles[s]
        segments.append(e)
    man = {
        "format": "edgeslim.manifest/1",
        "channel_rule": dict(CHANNEL_RULE),
        "segments": segments,
        "tasks": [{"name": t, "outputs": [t], "segment": t,
                   "metric": (metrics or {}).get(t, "accuracy")} for t in tasks],
        "fixed_channels": list(fixed_channels),
        "per_width": per_width,
    }
    first = net.segments[0]
    for n in model.graph.node:
        nm = n.name
        seg = slicer.segment_of(nm, man)
        expect = first if nm.startswith(f"/{first}/") else nm.split("/")[1]
        assert seg == expect, (nm, seg, expect)
    return man


def set_manifest(model, man):
    for p in list(model.metadata_props):
        if p.key == slicer.MANIFEST_KEY:
            model.metadata_props.remove(p)
    p = model.metadata_props.add()
    p.key = slicer.MANIFEST_KEY
    p.value = json.dumps(man, separators=(",", ":"))


def quantize_qdq(float_path, out_path, calib, man):
    """int8 QDQ copy of a float ONNX file (standard ops only), with `man` re-added. Q/DQ nodes
    named after a tensor of another segment (e.g. the graph output `digit`, which would fall to
    the first segment by prefix) are renamed under their producer's scope."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib[i:i + 1] for i in range(len(calib)))

        def get_next(self):
            v = next(self.it, None)
            return None if v is None else {"x": v}

    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" hint
    try:
        quantize_static(float_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    q = onnx.load(out_path)
    bad = [n.name for n in q.graph.node if n.domain not in ("", "ai.onnx")]
    assert not bad, f"non-standard ops in QDQ model: {bad}"
    keep = [o for o in q.opset_import if o.domain in ("", "ai.onnx")]
    del q.opset_import[:]
    q.opset_import.extend(keep)
    producer = {o: n for n in q.graph.node for o in n.output}
    enc = man["segments"][0]["name"]
    for n in q.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and \
                slicer.segment_of(n.name, man) == enc:
            p = producer.get(n.input[0])
            while p is not None and p.op_type in ("QuantizeLinear", "DequantizeLinear"):
                p = producer.get(p.input[0])
            if p is not None and slicer.segment_of(p.name, man) != enc:
                n.name = f"{p.name}/{n.name}"
    set_manifest(q, man)
    onnx.checker.check_model(q)
    onnx.save(q, out_path)
    return q


def export(net, in_shape, path, qdq_path=None, calib=None, metrics=None, fixed_channels=(),
           roles=None):
    """One call: export `net` (full width, BN folded) to `path` with its manifest; with
    `qdq_path` and `calib` also the int8 QDQ copy. Returns (model, manifest)."""
    import onnx

    model, conv_node_of, _ = export_onnx(net, in_shape, path, net.tasks)
    fixed = [conv_node_of[f"{m}.weight"] if f"{m}.weight" in conv_node_of else m
             for m in fixed_channels]
    man = make_manifest(model, net, per_width_entries(net, conv_node_of), metrics, fixed, roles)
    set_manifest(model, man)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    if qdq_path is not None:
        quantize_qdq(path, qdq_path, calib, man)
    return model, man
