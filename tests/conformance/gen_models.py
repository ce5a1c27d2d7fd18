#!/usr/bin/env python3
"""Generate the conformance models of tests/data/conformance/ (deterministic, seeded).

Three networks, random convolution weights, BatchNorm statistics re-estimated on synthetic
"real-ish" class-structured inputs so activations are sane, and a classifier head fitted by
ridge regression on the network's own features so top-1 margins are meaningful (not ties):

- mobilenetv2_035_96: MobileNetV2 width 0.35 at 96x96x3 (inverted residuals, depthwise convs,
  residual Adds, ReLU6 as Clip, GlobalAveragePool, Gemm head), 10 classes.
- dscnn_kws: DS-CNN keyword spotting, 49x10x1 MFCC-like input, conv + 4 depthwise-separable
  blocks, AveragePool, Gemm head, 12 classes.
- resnet8_32: ResNet-style, 32x32x3, conv + BN + ReLU + MaxPool stem, 3 stages of basic
  residual blocks (1x1 projection shortcuts), GlobalAveragePool, Gemm head, 10 classes.
  Its model.onnx keeps the BatchNormalization nodes (the others are exported folded).

Per network (opset 13, static batch 1, NCHW):
  model.onnx            float
  model_qdq_u8.onnx     quantize_static QDQ, u8 activations, per-channel s8 weights
  model_qdq_s8.onnx     quantize_static QDQ, s8 activations, per-channel s8 weights
  model_qop.onnx        quantize_static QOperator, op_types_to_quantize=[Conv, MatMul],
                        Gemm rewritten as MatMul + Add first (standard ONNX ops only)
  calib.npy             float16 [M, C, H, W] calibration inputs (values exact in float32)
  inputs.npy            float16 [N, C, H, W] test inputs (values exact in float32)
  labels.npy            int64 [N] the synthetic class of each test input (informative)
  ort_<model>.npy       float32 [N, classes] ONNX Runtime's outputs of each model on inputs
  ort_reference.json    ORT's quantization error of each quantized model against the float
                        one (top-1 agreement, mean/max |diff|): the bound for the compiler's
                        own quantization of model.onnx

Inputs are stored as float16 to keep tests/data small; every value is exactly representable,
so `astype(float32)` is lossless and is what the models were calibrated and checked on.

Usage: python3 tests/conformance/gen_models.py [--out tests/data/conformance]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    CalibrationMethod,
    quantize_static,
)

OPSET = 13
IR_VERSION = 8
STANDARD_DOMAINS = {"", "ai.onnx"}


# --------------------------------------------------------------------------------------------
# Graph building


class Builder:
    """A tiny ONNX graph builder that keeps BN as separate nodes (statistics set later)."""

    def __init__(self, name, rng):
        self.name = name
        self.rng = rng
        self.nodes = []
        self.inits = {}
        self.bns = []  # (bn node name, input tensor name, channels)
        self.counter = 0

    def uid(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def init(self, name, arr):
        self.inits[name] = np.asarray(arr)
        return name

    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=False, name=None):
        name = name or self.uid("conv")
        kh, kw = (k, k) if isinstance(k, int) else k
        if pad is None:
            pad = ((kh - 1) // 2, (kw - 1) // 2)
        elif isinstance(pad, int):
            pad = (pad, pad)
        fan_in = (cin // group) * kh * kw
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin // group, kh, kw))
        if MIX is not None:
            # Structured + random: each output channel mainly blurs one input channel of its
            # group (a sign-flipped copy for 1x1), plus a random part. Purely random weights
            # make a chaotic network in which one rounding step early on changes the logits
            # by dozens of steps; trained networks are far better conditioned than that, and
            # so is this one, while every weight stays non-trivial.
            g = np.outer([1.0, 2.0, 1.0][: kh if kh < 3 else 3], [1.0, 2.0, 1.0][: kw if kw < 3 else 3])
            ker = np.zeros((kh, kw))
            oy, ox = (kh - g.shape[0]) // 2, (kw - g.shape[1]) // 2
            ker[oy : oy + g.shape[0], ox : ox + g.shape[1]] = g / g.sum()
            cpg = cin // group
            opg = cout // group
            struct = np.zeros_like(w)
            for o in range(cout):
                struct[o, (o % opg) % cpg] = ker * self.rng.choice([-1.0, 1.0])
            norm = np.sqrt((struct**2).sum(axis=(1, 2, 3), keepdims=True))
            w = struct / norm * np.sqrt((w**2).sum(axis=(1, 2, 3), keepdims=True)) + MIX * w
        inputs = [x, self.init(f"{name}.weight", w.astype(np.float32))]
        if bias:
            inputs.append(self.init(f"{name}.bias", np.zeros(cout, np.float32)))
        out = f"{name}_out"
        self.nodes.append(
            helper.make_node(
                "Conv",
                inputs,
                [out],
                name=name,
                kernel_shape=[kh, kw],
                strides=[stride, stride] if isinstance(stride, int) else list(stride),
                pads=[pad[0], pad[1], pad[0], pad[1]],
                group=group,
            )
        )
        return out

    def bn(self, x, c, name=None, gamma=(0.6, 1.4)):
        name = name or self.uid("bn")
        out = f"{name}_out"
        ins = [x]
        for p, v in (("scale", 1.0), ("bias", 0.0), ("mean", 0.0), ("var", 1.0)):
            ins.append(self.init(f"{name}.{p}", np.full(c, v, np.float32)))
        self.nodes.append(
            helper.make_node("BatchNormalization", ins, [out], name=name, epsilon=1e-5)
        )
        self.bns.append((name, x, c, gamma))
        return out

    def relu(self, x):
        name = self.uid("relu")
        out = f"{name}_out"
        self.nodes.append(helper.make_node("Relu", [x], [out], name=name))
        return out

    def relu6(self, x):
        name = self.uid("clip")
        out = f"{name}_out"
        lo = self.init(f"{name}.min", np.array(0.0, np.float32))
        hi = self.init(f"{name}.max", np.array(6.0, np.float32))
        self.nodes.append(helper.make_node("Clip", [x, lo, hi], [out], name=name))
        return out

    def add(self, a, b):
        name = self.uid("add")
        out = f"{name}_out"
        self.nodes.append(helper.make_node("Add", [a, b], [out], name=name))
        return out

    def maxpool(self, x, k, s, p):
        name = self.uid("maxpool")
        out = f"{name}_out"
        self.nodes.append(
            helper.make_node(
                "MaxPool", [x], [out], name=name, kernel_shape=[k, k], strides=[s, s],
                pads=[p, p, p, p],
            )
        )
        return out

    def avgpool(self, x, kh, kw):
        name = self.uid("avgpool")
        out = f"{name}_out"
        self.nodes.append(
            helper.make_node(
                "AveragePool", [x], [out], name=name, kernel_shape=[kh, kw], strides=[1, 1]
            )
        )
        return out

    def gap(self, x):
        name = self.uid("gap")
        out = f"{name}_out"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [out], name=name))
        return out

    def flatten(self, x):
        name = self.uid("flatten")
        out = f"{name}_out"
        self.nodes.append(helper.make_node("Flatten", [x], [out], name=name, axis=1))
        return out

    def gemm(self, x, cin, cout, name="head"):
        w = self.rng.normal(0.0, np.sqrt(1.0 / cin), size=(cout, cin)).astype(np.float32)
        self.init(f"{name}.weight", w)
        self.init(f"{name}.bias", np.zeros(cout, np.float32))
        out = "logits"
        self.nodes.append(
            helper.make_node(
                "Gemm", [x, f"{name}.weight", f"{name}.bias"], [out], name=name, transB=1
            )
        )
        return out

    def model(self, in_shape, out_dim, batch=1, extra_outputs=()):
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *in_shape])
        outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, out_dim])]
        for e in extra_outputs:
            outs.append(helper.make_tensor_value_info(e, TensorProto.FLOAT, None))
        inits = [numpy_helper.from_array(v, k) for k, v in self.inits.items()]
        g = helper.make_graph(self.nodes, self.name, [inp], outs, initializer=inits)
        m = helper.make_model(
            g,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="edgeslim-conformance",
            ir_version=IR_VERSION,
        )
        return m


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def build_mobilenetv2(rng, alpha=0.35, classes=10):
    b = Builder("mobilenetv2_035_96", rng)
    cin = make_divisible(32 * alpha)
    x = b.relu6(b.bn(b.conv("input", 3, cin, 3, stride=2), cin))
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    for t, c, n, s in settings:
        cout = make_divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = b.relu6(b.bn(b.conv(y, cin, hidden, 1), hidden))
            y = b.relu6(b.bn(b.conv(y, hidden, hidden, 3, stride=stride, group=hidden), hidden))
            res = stride == 1 and cin == cout
            y = b.bn(b.conv(y, hidden, cout, 1), cout, gamma=RES_GAMMA if res else (0.6, 1.4))
            if res:
                y = b.add(x, y)
            x, cin = y, cout
    last = 1280
    x = b.relu6(b.bn(b.conv(x, cin, last, 1), last))
    feat = b.flatten(b.gap(x))
    b.gemm(feat, last, classes)
    return b, (3, 96, 96), classes, feat, last


def build_dscnn(rng, classes=12, ch=64):
    b = Builder("dscnn_kws", rng)
    # MLPerf Tiny DS-CNN: conv 10x4 stride 2, pad (5,1,4,1) -> 25x5; here symmetric pads
    # (4,1) with stride 2 give 24x5.
    x = b.relu(b.bn(b.conv("input", 1, ch, (10, 4), stride=2, pad=(4, 1)), ch))
    for _ in range(4):
        x = b.relu(b.bn(b.conv(x, ch, ch, 3, group=ch), ch))
        x = b.relu(b.bn(b.conv(x, ch, ch, 1), ch))
    x = b.avgpool(x, 24, 5)
    feat = b.flatten(x)
    b.gemm(feat, ch, classes)
    return b, (1, 49, 10), classes, feat, ch


def build_resnet(rng, classes=10):
    b = Builder("resnet8_32", rng)
    c = 16
    x = b.relu(b.bn(b.conv("input", 3, c, 3), c))
    x = b.maxpool(x, 3, 2, 1)  # 16x16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        y = b.relu(b.bn(b.conv(x, c, cout, 3, stride=stride), cout))
        y = b.bn(b.conv(y, cout, cout, 3), cout, gamma=RES_GAMMA)
        if stride != 1 or c != cout:
            sc = b.bn(b.conv(x, c, cout, 1, stride=stride, pad=0), cout)
        else:
            sc = x
        x = b.relu(b.add(sc, y))
        c = cout
    feat = b.flatten(b.gap(x))
    b.gemm(feat, c, classes)
    return b, (3, 32, 32), classes, feat, c


# --------------------------------------------------------------------------------------------
# Synthetic, class-structured inputs


def smooth_field(rng, shape, n_waves=6, max_freq=3.0):
    """A sum of random low-frequency 2-D sinusoids, shape (C, H, W)."""
    c, h, w = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.zeros(shape)
    for ch in range(c):
        for _ in range(n_waves):
            fy, fx = rng.uniform(-max_freq, max_freq, 2)
            ph = rng.uniform(0, 2 * np.pi)
            out[ch] += rng.normal() * np.cos(2 * np.pi * (fy * yy + fx * xx) + ph)
    return out / np.sqrt(n_waves)


class Synth:
    """Class prototypes plus per-sample variation; values quantized to float16-exact."""

    def __init__(self, rng, shape, classes):
        self.rng = rng
        self.shape = shape
        self.classes = classes
        self.protos = [smooth_field(rng, shape) for _ in range(classes)]

    def sample(self, n):
        xs, ys = [], []
        for _ in range(n):
            k = int(self.rng.integers(self.classes))
            x = self.protos[k] * self.rng.uniform(0.8, 1.2)
            x = x + 0.3 * smooth_field(self.rng, self.shape, n_waves=4, max_freq=6.0)
            x = x + 0.3 * self.rng.normal(size=self.shape)
            xs.append(x)
            ys.append(k)
        x = np.clip(np.stack(xs), -3.0, 3.0)
        # float16-exact (and in fact multiples of 1/256), so float32 files are not needed.
        x = np.round(x * 256.0) / 256.0
        x = x.astype(np.float16).astype(np.float32)
        return x, np.array(ys, np.int64)


# --------------------------------------------------------------------------------------------
# BN re-estimation, head fitting, folding


def session(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_batched(model, x, outputs, bs=16):
    """Run a batch-1 model (input/outputs re-declared with a dynamic batch) over x."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    del m.graph.output[:]
    for o in outputs:
        m.graph.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
    s = session(m)
    res = [[] for _ in outputs]
    for i in range(0, len(x), bs):
        r = s.run(outputs, {"input": x[i : i + bs]})
        for j, v in enumerate(r):
            res[j].append(v)
    return [np.concatenate(r) for r in res]


def estimate_bn(b, x, rng):
    """Set each BN's statistics from its input on x, in graph order; random affine params."""
    for name, inp, c, gamma in b.bns:
        m = b.model(SHAPES[b.name], 1)
        (a,) = run_batched(m, x, [inp])
        mean = a.mean(axis=(0, 2, 3))
        var = a.var(axis=(0, 2, 3))
        # Channels whose variance collapsed (their weights cancel on this data) would be
        # scaled up by 1/std and amplify the quantization noise of their inputs: floor the
        # variance BN normalizes by at a fraction of the layer's median.
        var = np.maximum(var, VAR_FLOOR * np.median(var))
        b.inits[f"{name}.mean"] = mean.astype(np.float32)
        b.inits[f"{name}.var"] = var.astype(np.float32)
        b.inits[f"{name}.scale"] = rng.uniform(gamma[0], gamma[1], c).astype(np.float32)
        b.inits[f"{name}.bias"] = rng.normal(0.2, 0.3, c).astype(np.float32)


def fit_head(b, feat, feat_dim, classes, x, y):
    """Nearest-class-mean readout on standardized features, scaled to logits of std 2.

    (A ridge regression on 1280 features from a few hundred samples overfits to directions
    that quantization noise moves; class means are robust.)"""
    m = b.model(SHAPES[b.name], classes)
    (f,) = run_batched(m, x, [feat])
    mu = f.mean(axis=0)
    sd = f.std(axis=0)
    sd = np.maximum(sd, np.median(sd))  # no feature is amplified beyond the typical one
    z = (f - mu) / sd
    means = np.stack([z[y == k].mean(axis=0) for k in range(classes)])
    logits = z @ means.T - 0.5 * (means * means).sum(axis=1)
    s = 2.0 / logits.std()
    w = means / sd[None, :] * s
    bias = (-0.5 * (means * means).sum(axis=1) - (mu / sd) @ means.T) * s
    b.inits["head.weight"] = w.astype(np.float32)
    b.inits["head.bias"] = bias.astype(np.float32)


def fold_bn(model):
    """Fold every Conv -> BatchNormalization pair (BN the only consumer) into the Conv."""
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}
    drop = set()
    for n in g.node:
        if n.op_type != "BatchNormalization":
            continue
        conv = producer[n.input[0]]
        assert conv.op_type == "Conv" and len(consumers[conv.output[0]]) == 1
        eps = next(a.f for a in n.attribute if a.name == "epsilon")
        gamma, beta, mean, var = (inits[i] for i in n.input[1:5])
        s = gamma / np.sqrt(var + eps)
        w = inits[conv.input[1]] * s[:, None, None, None]
        bias = inits[conv.input[2]] if len(conv.input) > 2 else np.zeros(len(s), np.float32)
        bias = (bias - mean) * s + beta
        inits[conv.input[1]] = w.astype(np.float32)
        bname = conv.name + ".bias"
        inits[bname] = bias.astype(np.float32)
        if len(conv.input) > 2:
            conv.input[2] = bname
        else:
            conv.input.append(bname)
        conv.output[0] = n.output[0]
        drop.add(n.name)
        for i in n.input[1:5]:
            inits.pop(i)
    nodes = [n for n in g.node if n.name not in drop]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items())
    onnx.checker.check_model(model)
    return model


def gemm_to_matmul_add(model):
    """Gemm(x, W, b, transB=1) -> MatMul(x, W^T) + b, so QOperator needs no com.microsoft."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    nodes = []
    for n in g.node:
        if n.op_type != "Gemm":
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0
        assert attrs.get("beta", 1.0) == 1.0
        w = numpy_helper.to_array(inits[n.input[1]])
        if attrs.get("transB", 0):
            w = w.T
        wname = n.input[1] + "_t"
        g.initializer.remove(inits[n.input[1]])
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), wname))
        mm = n.name + "_matmul_out"
        nodes.append(helper.make_node("MatMul", [n.input[0], wname], [mm], name=n.name + "_matmul"))
        nodes.append(helper.make_node("Add", [mm, n.input[2]], [n.output[0]], name=n.name + "_add"))
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    return m


# --------------------------------------------------------------------------------------------
# Quantization


class Reader(CalibrationDataReader):
    def __init__(self, x):
        self.x = x
        self.i = 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {"input": self.x[self.i - 1 : self.i]}

    def rewind(self):
        self.i = 0


def quantize(model, calib, fmt, act, op_types=None):
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in.onnx")
        dst = os.path.join(d, "out.onnx")
        onnx.save(model, src)
        kw = {}
        if op_types is not None:
            kw["op_types_to_quantize"] = op_types
        quantize_static(
            src,
            dst,
            Reader(calib),
            quant_format=fmt,
            activation_type=act,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            **kw,
        )
        q = onnx.load(dst)
    return clean(q)


def clean(m):
    """Drop cruft the quantizer leaves (value_info, metadata, duplicate opset imports)."""
    del m.graph.value_info[:]
    del m.metadata_props[:]
    ops = [o for o in m.opset_import if o.domain in STANDARD_DOMAINS]
    bad = [n for n in m.graph.node if n.domain not in STANDARD_DOMAINS]
    assert not bad, f"non-standard nodes: {[(n.name, n.domain, n.op_type) for n in bad]}"
    del m.opset_import[:]
    m.opset_import.extend(ops)
    m.producer_name = "edgeslim-conformance"
    m.producer_version = ""
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m


# --------------------------------------------------------------------------------------------

SHAPES = {}
MIX = 0.3
VAR_FLOOR = 0.25
RES_GAMMA = (0.1, 0.3)  # last BN of a residual branch: residual blocks stay near identity


def make_network(build, seed, n_fit, n_calib, n_inputs, knobs):
    global MIX, VAR_FLOOR, RES_GAMMA
    MIX, VAR_FLOOR, RES_GAMMA = knobs
    rng = np.random.default_rng(seed)
    b, in_shape, classes, feat, feat_dim = build(rng)
    SHAPES[b.name] = in_shape
    synth = Synth(rng, in_shape, classes)
    x_fit, y_fit = synth.sample(n_fit)
    estimate_bn(b, x_fit, rng)
    fit_head(b, feat, feat_dim, classes, x_fit, y_fit)
    model = b.model(in_shape, classes)
    onnx.checker.check_model(model)
    calib, _ = synth.sample(n_calib)
    inputs, labels = synth.sample(n_inputs)
    return b.name, model, classes, calib, inputs, labels


def ort_run(model, x):
    s = session(model)
    return np.concatenate([s.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "conformance"))
    ap.add_argument("--only", help="one of mobilenetv2, dscnn, resnet")
    args = ap.parse_args()

    nets = [
        # builder, seed, fit samples, calib, test inputs, (MIX, VAR_FLOOR, RES_GAMMA)
        # MobileNetV2 (52 conv layers) needs the most conditioning: with less, one rounding
        # step early on moves its logits by several steps even between tract and ORT.
        (build_mobilenetv2, 1, 384, 16, 32, (0.2, 0.5, (0.05, 0.15))),
        (build_dscnn, 2, 512, 48, 64, (0.3, 0.25, (0.1, 0.3))),
        (build_resnet, 3, 512, 32, 64, (0.3, 0.25, (0.1, 0.3))),
    ]
    for build, seed, n_fit, n_calib, n_inputs, knobs in nets:
        if args.only and build.__name__ != "build_" + args.only:
            continue
        name, model, classes, calib, inputs, labels = make_network(
            build, seed, n_fit, n_calib, n_inputs, knobs
        )
        out = os.path.join(args.out, name)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        assert any(n.op_type == "BatchNormalization" for n in model.graph.node)
        folded = fold_bn(onnx.load_from_string(model.SerializeToString()))
        files = {}
        # ResNet keeps its BatchNormalization nodes (the compiler folds them); the others are
        # exported folded, as torch.onnx.export does in eval mode. ORT quantizes the folded
        # graph either way.
        files["model.onnx"] = model if name.startswith("resnet") else clean(folded)
        files["model_qdq_u8.onnx"] = quantize(folded, calib, QuantFormat.QDQ, QuantType.QUInt8)
        files["model_qdq_s8.onnx"] = quantize(folded, calib, QuantFormat.QDQ, QuantType.QInt8)
        files["model_qop.onnx"] = quantize(
            gemm_to_matmul_add(folded),
            calib,
            QuantFormat.QOperator,
            QuantType.QUInt8,
            op_types=["Conv", "MatMul"],
        )
        ref = ort_run(files["model.onnx"], inputs)
        srt = np.sort(ref, axis=1)
        info = {
            "classes": classes,
            "inputs": len(inputs),
            "calib": len(calib),
            "float_accuracy_synthetic_labels": float((ref.argmax(1) == labels).mean()),
            "float_min_top1_margin": float((srt[:, -1] - srt[:, -2]).min()),
        }
        for fname, m in files.items():
            onnx.save(m, os.path.join(out, fname))
            y = ort_run(m, inputs)
            stem = fname[: -len(".onnx")]
            np.save(os.path.join(out, f"ort_{stem}.npy"), y.astype(np.float32))
            if fname != "model.onnx":
                key = stem[len("model_") :]
                info[f"{key}_top1_vs_float"] = float((y.argmax(1) == ref.argmax(1)).mean())
                info[f"{key}_mean_abs_vs_float"] = float(np.abs(y - ref).mean())
                info[f"{key}_max_abs_vs_float"] = float(np.abs(y - ref).max())
        np.save(os.path.join(out, "calib.npy"), calib.astype(np.float16))
        np.save(os.path.join(out, "inputs.npy"), inputs.astype(np.float16))
        np.save(os.path.join(out, "labels.npy"), labels)
        with open(os.path.join(out, "ort_reference.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")
        print(name, json.dumps(info, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
