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

Four opset-17 networks, written as torch.onnx.export writes them (see "Opset-17 networks"):

- mobilenetv3_small_96: torchvision mobilenet_v3_small's blocks at width 0.5, 96x96x3,
  HardSwish, squeeze-excitation (GlobalAveragePool, 1x1 convs, HardSigmoid, Mul broadcast),
  Gemm 256 + HardSwish + Gemm head, 10 classes.
- unet_segdepth_64: U-Net, 64x64x3, ConvTranspose (k2 s2, k4 s2 p1), Resize (bilinear and
  nearest), Concat skips; two outputs: `seg` [1, 5, 64, 64] logits, `depth` [1, 1, 64, 64]
  Sigmoid. labels.npy holds per-pixel labels [N, 64, 64].
- yolo_tiny_96: conv + BN + LeakyRelu + MaxPool backbone to 6x6, two YOLOv3-tiny heads
  (Resize nearest + Concat for the second): `det_6` [1, 6, 6, 21], `det_12` [1, 12, 12, 21]
  (Sigmoid, Transpose to NHWC). No labels.
- kws_tcn_49x10: TCN keyword spotting, 49x10x1, Pad reflect, PRelu, explicit constant Pad +
  time-dilated convs in residual blocks, ReduceMean + Squeeze, Gemm, 12 classes.
  Its head (and U-Net's `seg`) is a shrunk linear-discriminant readout, not class means.

Per network (opset 13, 17 for the four above; static batch 1, NCHW):
  model.onnx            float
  model_qdq_u8.onnx     quantize_static QDQ, u8 activations, per-channel s8 weights
  model_qdq_s8.onnx     quantize_static QDQ, s8 activations, per-channel s8 weights
  model_qop.onnx        quantize_static QOperator, op_types_to_quantize=[Conv, MatMul],
                        Gemm rewritten as MatMul + Add first (standard ONNX ops only)
  calib.npy             float16 [M, C, H, W] calibration inputs (values exact in float32)
  inputs.npy            float16 [N, C, H, W] test inputs (values exact in float32)
  labels.npy            int64 [N] the synthetic class of each test input (informative)
  ort_<model>.npy       float32 [N, classes] ONNX Runtime's outputs of each model on inputs;
                        nets with several outputs: ort_<model>.<output>.npy, [N, ...] each
  ort_reference.json    ORT's quantization error of each quantized model against the float
                        one (top-1 agreement, mean/max |diff|): the bound for the compiler's
                        own quantization of model.onnx; keys "<output>.<...>" for nets with
                        several outputs (seg: per-pixel top-1)

Inputs are stored as float16 to keep tests/data small; every value is exactly representable,
so `astype(float32)` is lossless and is what the models were calibrated and checked on.

Usage: python3 tests/conformance/gen_models.py [--out tests/data/conformance] [--only NAME]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

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

    opset = OPSET

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

    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=False, name=None,
             dilation=None):
        """dilation=None writes no `dilations` attribute (the opset-13 nets' files)."""
        name = name or self.uid("conv")
        kh, kw = (k, k) if isinstance(k, int) else k
        dh, dw = (1, 1) if dilation is None else _pair(dilation)
        if pad is None:
            pad = ((kh - 1) // 2 * dh, (kw - 1) // 2 * dw)
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
        extra = {} if dilation is None else {"dilations": [dh, dw]}
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
                **extra,
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
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name="edgeslim-conformance",
            ir_version=IR_VERSION,
        )
        return m


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


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
        assert conv.op_type in ("Conv", "ConvTranspose") and len(consumers[conv.output[0]]) == 1
        eps = next(a.f for a in n.attribute if a.name == "epsilon")
        gamma, beta, mean, var = (inits[i] for i in n.input[1:5])
        s = gamma / np.sqrt(var + eps)
        if conv.op_type == "Conv":
            w = inits[conv.input[1]] * s[:, None, None, None]
        else:  # ConvTranspose weight [C_in, C_out, kH, kW] (group 1)
            w = inits[conv.input[1]] * s[None, :, None, None]
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


# --------------------------------------------------------------------------------------------
# Opset-17 networks (the ops of torch.onnx.export beyond the first three nets)
#
# Written as the TorchScript exporter (torch.onnx.export, opset 17, eval mode) writes them:
# Conv/ConvTranspose with dilations, group, kernel_shape, pads, strides (BN folded into the
# Conv); nn.Linear as Gemm(alpha=1, beta=1, transB=1); F.hardswish as HardSwish (opset 14);
# F.hardsigmoid as HardSigmoid(alpha=1/6) (beta left at its default 0.5); nn.PReLU(C) as PRelu
# with the slope unsqueezed to [C, 1, 1]; F.pad as Pad(x, pads[, value]) with mode reflect /
# constant; F.interpolate(scale_factor=2) as Resize(x, "", scales=[1, 1, 2, 2]) with
# cubic_coeff_a=-0.75 and nearest_mode=floor, bilinear (align_corners=False) as mode=linear +
# pytorch_half_pixel (newer torch releases write half_pixel: the same coordinates unless an
# output dimension is 1), nearest as mode=nearest + asymmetric; mean(dim=(2, 3), keepdim=True) as
# ReduceMean(axes=[2, 3], keepdims=1) (an attribute until opset 18) and squeeze as Squeeze
# with an int64 axes input (opset 13 form); MaxPool with ceil_mode=0.

OPSET_NEW = 17


class TorchBuilder(Builder):
    """Builder for the opset-17 nets: several named outputs, torch-style attributes."""

    opset = OPSET_NEW

    def __init__(self, name, rng):
        super().__init__(name, rng)
        self.outs = []  # (graph output name, shape without batch)

    def node(self, op, inputs, prefix, out=None, name=None, **attrs):
        name = name or self.uid(prefix)
        out = out or f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def output(self, tensor, name, shape):
        """Rename the tensor `tensor` (just produced, no consumer yet) to graph output `name`."""
        (n,) = [n for n in self.nodes if tensor in n.output]
        n.output[list(n.output).index(tensor)] = name
        self.outs.append((name, tuple(shape)))
        return name

    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=False, name=None,
             dilation=1):
        return super().conv(x, cin, cout, k, stride, pad, group, bias, name, dilation=dilation)

    def conv_transpose(self, x, cin, cout, k, stride, pad=0, name=None):
        """nn.ConvTranspose2d(cin, cout, k, stride, pad) (bias=True): weight [C_in, C_out, k, k].

        Structured + random like conv(): each output channel mainly upsamples one input
        channel with a separable kernel (k == stride: nearest, [1, 3, 3, 1]: bilinear)."""
        name = name or self.uid("convtranspose")
        fan_in = cin * k * k / (stride * stride)  # taps reaching one output pixel
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin, k, k))
        if MIX is not None:
            tap = {1: [1.0], 2: [1.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[k]
            ker = np.outer(tap, tap)
            struct = np.zeros_like(w)
            for o in range(cout):
                struct[o, o % cin] = ker * self.rng.choice([-1.0, 1.0])
            norm = np.sqrt((struct**2).sum(axis=(1, 2, 3), keepdims=True))
            w = struct / norm * np.sqrt((w**2).sum(axis=(1, 2, 3), keepdims=True)) + MIX * w
        w = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).astype(np.float32)
        ins = [x, self.init(f"{name}.weight", w), self.init(f"{name}.bias", np.zeros(cout, np.float32))]
        return self.node(
            "ConvTranspose", ins, "convtranspose", name=name, dilations=[1, 1], group=1,
            kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride],
        )

    def gemm(self, x, cin, cout, name="head", out=None):
        w = self.rng.normal(0.0, np.sqrt(1.0 / cin), size=(cout, cin)).astype(np.float32)
        ins = [x, self.init(f"{name}.weight", w), self.init(f"{name}.bias", np.zeros(cout, np.float32))]
        return self.node("Gemm", ins, "gemm", out=out, alpha=1.0, beta=1.0, transB=1)

    def hardswish(self, x):
        return self.node("HardSwish", [x], "hardswish")

    def hardsigmoid(self, x):
        return self.node("HardSigmoid", [x], "hardsigmoid", alpha=1.0 / 6.0)

    def sigmoid(self, x):
        return self.node("Sigmoid", [x], "sigmoid")

    def leaky_relu(self, x, alpha=0.1):
        return self.node("LeakyRelu", [x], "leakyrelu", alpha=alpha)

    def prelu(self, x, c, lo=0.1, hi=0.3):
        name = self.uid("prelu")
        slope = self.init(f"{name}.slope", self.rng.uniform(lo, hi, (c, 1, 1)).astype(np.float32))
        return self.node("PRelu", [x, slope], "prelu")

    def mul(self, a, b):
        return self.node("Mul", [a, b], "mul")

    def add(self, a, b):
        return self.node("Add", [a, b], "add")

    def concat(self, xs, axis=1):
        return self.node("Concat", list(xs), "concat", axis=axis)

    def transpose(self, x, perm, out=None):
        return self.node("Transpose", [x], "transpose", out=out, perm=list(perm))

    def maxpool(self, x, k, s, p=0):
        return self.node(
            "MaxPool", [x], "maxpool", ceil_mode=0, kernel_shape=[k, k], pads=[p] * 4,
            strides=[s, s],
        )

    def pad(self, x, pads, mode, value=None):
        """pads in ONNX order [x1_begin, x2_begin, ..., x1_end, ...]."""
        name = self.uid("pad")
        ins = [x, self.init(f"{name}.pads", np.array(pads, np.int64))]
        if mode == "constant":
            ins.append(self.init(f"{name}.value", np.array(value, np.float32)))
        return self.node("Pad", ins, "pad", mode=mode)

    def resize2x(self, x, mode):
        name = self.uid("resize")
        scales = self.init(f"{name}.scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32))
        ctm = "asymmetric" if mode == "nearest" else "pytorch_half_pixel"
        return self.node(
            "Resize", [x, "", scales], "resize", coordinate_transformation_mode=ctm,
            cubic_coeff_a=-0.75, mode=mode, nearest_mode="floor",
        )

    def reduce_mean(self, x, axes, keepdims=1):
        return self.node("ReduceMean", [x], "reducemean", axes=list(axes), keepdims=keepdims)

    def squeeze(self, x, axes):
        name = self.uid("squeeze")
        ax = self.init(f"{name}.axes", np.array(axes, np.int64))
        return self.node("Squeeze", [x, ax], "squeeze")

    def squeeze_excitation(self, x, c, sq):
        """torchvision SqueezeExcitation: avgpool, fc1 (bias), ReLU, fc2 (bias), Hardsigmoid,
        `scale * input`. The fc convs get their biases from a BN folded into them (statistics
        on the synthetic data, like every other conv): fc2's output spans the hardsigmoid's
        slope, so the gates vary."""
        s = self.gap(x)
        s = self.relu(self.bn(self.conv(s, c, sq, 1, pad=0), sq))
        s = self.hardsigmoid(self.bn(self.conv(s, sq, c, 1, pad=0), c, gamma=(1.0, 2.5)))
        return self.mul(s, x)

    def model(self, in_shape, out_dim=None, batch=1, extra_outputs=()):
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *in_shape])
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, *s]) for n, s in self.outs]
        inits = [numpy_helper.from_array(v, k) for k, v in self.inits.items()]
        g = helper.make_graph(self.nodes, self.name, [inp], outs, initializer=inits)
        return helper.make_model(
            g,
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name="edgeslim-conformance",
            ir_version=IR_VERSION,
        )


class Net:
    """An opset-17 network: graph, input shape, data source, head fitting, output kinds."""

    def __init__(self, b, in_shape, data, fit, kinds, classes=None):
        self.b, self.in_shape, self.data, self.fit = b, in_shape, data, fit
        self.kinds = kinds  # output name -> "class" (top-1 over axis 1) | "dense"
        self.classes = classes


def ncm_readout(f, y, classes):
    """fit_head's nearest-class-mean readout on rows of f: (weight [classes, C], bias)."""
    mu = f.mean(axis=0)
    sd = f.std(axis=0)
    sd = np.maximum(sd, np.median(sd))
    z = (f - mu) / sd
    means = np.stack([z[y == k].mean(axis=0) for k in range(classes)])
    logits = z @ means.T - 0.5 * (means * means).sum(axis=1)
    s = 2.0 / logits.std()
    w = means / sd[None, :] * s
    bias = (-0.5 * (means * means).sum(axis=1) - (mu / sd) @ means.T) * s
    return w.astype(np.float32), bias.astype(np.float32)


def lda_readout(f, y, classes, shrink=0.2):
    """Linear discriminant readout: class means compared in the metric of the pooled
    within-class covariance, shrunk towards its mean variance by `shrink` (so directions the
    classes hardly vary along, which quantization noise would move, are not amplified
    without bound); logits scaled to std 2 like ncm_readout."""
    mu = f.mean(axis=0)
    sd = f.std(axis=0)
    sd = np.maximum(sd, np.median(sd))
    z = (f - mu) / sd
    means = np.stack([z[y == k].mean(axis=0) for k in range(classes)])
    wc = z - means[y]
    cov = wc.T @ wc / len(z)
    cov = (1 - shrink) * cov + shrink * np.eye(len(cov)) * np.trace(cov) / len(cov)
    a = np.linalg.solve(cov, means.T).T  # [classes, C]
    bias = -0.5 * (a * means).sum(axis=1)
    s = 2.0 / (z @ a.T + bias).std()
    w = a / sd[None, :] * s
    bias = (bias - (mu / sd) @ a.T) * s
    return w.astype(np.float32), bias.astype(np.float32)


def ridge_readout(f, t, lam=1e-2):
    """Least squares t ~ f @ W.T + b on standardized features: (W [K, C], b [K])."""
    mu = f.mean(axis=0)
    sd = np.maximum(f.std(axis=0), 1e-6)
    sd = np.maximum(sd, 0.1 * np.median(sd))
    z = (f - mu) / sd
    tm = t.mean(axis=0)
    a = np.linalg.solve(z.T @ z / len(z) + lam * np.eye(z.shape[1]), z.T @ (t - tm) / len(z))
    w = (a / sd[:, None]).T
    bias = tm - w @ mu
    return w.astype(np.float32), bias.astype(np.float32)


def pixels(a):
    """[N, C, H, W] -> [N*H*W, C]."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def logit(p):
    return np.log(p / (1.0 - p))


def feats(b, x, names):
    return run_batched(b.model(SHAPES[b.name]), x, names)


# --- 1. MobileNetV3-Small ----------------------------------------------------------------


def build_mobilenetv3(rng, width=0.5, classes=10, hidden=256):
    b = TorchBuilder("mobilenetv3_small_96", rng)
    adj = lambda c: make_divisible(c * width)  # noqa: E731 (torchvision adjust_channels)
    cin = adj(16)
    x = b.hardswish(b.bn(b.conv("input", 3, cin, 3, stride=2), cin))
    # torchvision mobilenet_v3_small: (in, kernel, expanded, out, SE, activation, stride)
    table = [
        (16, 3, 16, 16, True, "RE", 2),
        (16, 3, 72, 24, False, "RE", 2),
        (24, 3, 88, 24, False, "RE", 1),
        (24, 5, 96, 40, True, "HS", 2),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 240, 40, True, "HS", 1),
        (40, 5, 120, 48, True, "HS", 1),
        (48, 5, 144, 48, True, "HS", 1),
        (48, 5, 288, 96, True, "HS", 2),
        (96, 5, 576, 96, True, "HS", 1),
        (96, 5, 576, 96, True, "HS", 1),
    ]
    for c_in, k, c_exp, c_out, se, act, s in table:
        ci, ce, co = adj(c_in), adj(c_exp), adj(c_out)
        assert ci == cin
        f = b.relu if act == "RE" else b.hardswish
        y = x
        if ce != ci:
            y = f(b.bn(b.conv(y, ci, ce, 1), ce))
        y = f(b.bn(b.conv(y, ce, ce, k, stride=s, group=ce), ce))
        if se:
            y = b.squeeze_excitation(y, ce, make_divisible(ce // 4))
        res = s == 1 and ci == co
        y = b.bn(b.conv(y, ce, co, 1), co, gamma=RES_GAMMA if res else (0.6, 1.4))
        if res:
            y = b.add(y, x)  # torchvision: result += input
        x, cin = y, co
    last = 6 * cin
    x = b.hardswish(b.bn(b.conv(x, cin, last, 1), last))
    feat = b.flatten(b.gap(x))
    pre = b.gemm(feat, last, hidden, name="fc1")
    h = b.hardswish(pre)
    b.gemm(h, hidden, classes, name="head", out="logits")
    b.outs.append(("logits", (classes,)))

    def fit(x_fit, y_fit, aux):
        # fc1: a random projection of the standardized features, each unit rescaled on the
        # data to a pre-activation of mean ~N(0.5, 0.5) and std 1..2 (HardSwish's bend).
        (f,) = feats(b, x_fit, [feat])
        mu, sd = f.mean(axis=0), f.std(axis=0)
        sd = np.maximum(sd, np.median(sd))
        r = rng.normal(size=(hidden, last)) / np.sqrt(last) / sd[None, :]
        p = (f - mu) @ r.T
        a = rng.uniform(1.0, 2.0, hidden) / p.std(axis=0)
        c = rng.normal(0.5, 0.5, hidden)
        b.inits["fc1.weight"] = (r * a[:, None]).astype(np.float32)
        b.inits["fc1.bias"] = (c - (r @ mu + p.mean(axis=0)) * a).astype(np.float32)
        (hh,) = feats(b, x_fit, [h])
        # (class means alone: ~89% on the synthetic labels)
        b.inits["head.weight"], b.inits["head.bias"] = lda_readout(hh, y_fit, classes, 0.5)

    return Net(b, (3, 96, 96), Synth(rng, (3, 96, 96), classes), fit, {"logits": "class"}, classes)


# --- 2. U-Net, segmentation + depth ---------------------------------------------------------


class SegSynth:
    """Per-pixel label = argmax of 5 smooth random fields; the image is the label map in
    5 class colours, plus a smooth depth field along a fixed colour direction, variation and
    noise. Depth target = sigmoid of that field. Values on the 1/256 grid, float16-exact."""

    def __init__(self, rng, shape, classes):
        self.rng, self.shape, self.classes = rng, shape, classes
        c = rng.normal(size=(classes, shape[0]))
        self.colors = c / np.linalg.norm(c, axis=1, keepdims=True) * 1.8
        d = rng.normal(size=shape[0])
        self.dvec = d / np.linalg.norm(d) * 0.4

    def sample(self, n):
        rng = self.rng
        c, h, w = self.shape
        xs, labs, deps = [], [], []
        for _ in range(n):
            lab = smooth_field(rng, (self.classes, h, w), n_waves=4, max_freq=1.5).argmax(0)
            dep = smooth_field(rng, (1, h, w), n_waves=3, max_freq=1.2)[0] * 1.5
            x = self.colors[lab].transpose(2, 0, 1) * rng.uniform(0.8, 1.2)
            x = x + dep[None] * self.dvec[:, None, None]
            x = x + 0.2 * smooth_field(rng, self.shape, n_waves=4, max_freq=6.0)
            x = x + 0.15 * rng.normal(size=self.shape)
            xs.append(x)
            labs.append(lab)
            deps.append(1.0 / (1.0 + np.exp(-dep)))
        x = np.clip(np.stack(xs), -3.0, 3.0)
        x = (np.round(x * 256.0) / 256.0).astype(np.float16).astype(np.float32)
        return x, np.stack(labs).astype(np.int64), np.stack(deps)


def build_unet(rng, classes=5):
    b = TorchBuilder("unet_segdepth_64", rng)
    s1 = b.relu(b.bn(b.conv("input", 3, 16, 3), 16))  # 16 x 64 x 64
    s2 = b.relu(b.bn(b.conv(s1, 16, 32, 3, stride=2), 32))  # 32 x 32 x 32
    e3 = b.relu(b.bn(b.conv(s2, 32, 64, 3, stride=2), 64))  # 64 x 16 x 16
    # ConvTranspose2d(64, 32, 2, stride=2); its BN only sets weight scale and bias from the
    # data and is folded into it (the file has a ConvTranspose with bias, as exported).
    u2 = b.bn(b.conv_transpose(e3, 64, 32, 2, 2), 32)  # 32 x 32 x 32
    # torch.cat([skip, up], 1) as in the common PyTorch U-Net: the structured part of the
    # next conv's weights follows the skip's full-resolution detail
    d2 = b.relu(b.bn(b.conv(b.concat([s2, u2]), 64, 32, 3), 32))
    r1 = b.resize2x(d2, "linear")  # 32 x 64 x 64
    r1 = b.relu(b.bn(b.conv(r1, 32, 16, 3), 16))
    d1 = b.relu(b.bn(b.conv(b.concat([s1, r1]), 32, 16, 3), 16))  # 16 x 64 x 64
    seg = b.output(b.conv(d1, 16, classes, 1, bias=True, name="seg_head"), "seg", (classes, 64, 64))
    # depth: coarse branch, 1x1 on the 16x16 features, nearest x2, ConvTranspose k4 s2 p1
    q = b.relu(b.bn(b.conv(e3, 64, 16, 1), 16))
    q = b.resize2x(q, "nearest")  # 16 x 32 x 32
    q = b.relu(b.bn(b.conv_transpose(q, 16, 8, 4, 2, pad=1), 8))  # 8 x 64 x 64
    dfeat = b.concat([q, d1])  # 24 x 64 x 64
    b.output(b.sigmoid(b.conv(dfeat, 24, 1, 1, bias=True, name="depth_head")), "depth", (1, 64, 64))

    def fit(x_fit, lab, dep):
        (f,) = feats(b, x_fit, [dfeat])
        fp = pixels(f)  # channels 0..7 the depth branch, 8..23 d1
        w, bias = lda_readout(fp[:, 8:], lab.reshape(-1), classes)
        b.inits["seg_head.weight"] = w.reshape(classes, 16, 1, 1)
        b.inits["seg_head.bias"] = bias
        t = logit(np.clip(dep.reshape(-1, 1), 0.05, 0.95))
        w, bias = ridge_readout(fp, t)
        b.inits["depth_head.weight"] = w.reshape(1, 24, 1, 1)
        b.inits["depth_head.bias"] = bias

    return Net(b, (3, 64, 64), SegSynth(rng, (3, 64, 64), classes), fit,
               {"seg": "class", "depth": "dense"}, classes)


# --- 3. tiny YOLO ------------------------------------------------------------------------------


class DetSynth:
    """Scenes of 1-4 Gaussian blobs (2 classes by colour, 3 size bands) on a smooth
    background. targets(): YOLO-style per-cell probabilities for 3 anchors (= size bands) x
    (x, y, w, h, objectness, class 0, class 1): objectness a heat map of the blob centres of
    the anchor's band, the rest the nearest such blob's offset, size and class, pulled to 0.5
    away from blobs. Only used to fit the 1x1 heads (a non-degenerate readout)."""

    SIGMA = (3.0, 6.0, 12.0)

    def __init__(self, rng, shape):
        self.rng, self.shape = rng, shape
        c = rng.normal(size=(2, shape[0]))
        self.colors = c / np.linalg.norm(c, axis=1, keepdims=True) * 2.0

    def sample(self, n):
        rng = self.rng
        c, h, w = self.shape
        yy, xx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        xs, scenes = [], []
        for _ in range(n):
            x = 0.6 * smooth_field(rng, self.shape, n_waves=4, max_freq=2.0)
            objs = []
            for _ in range(int(rng.integers(1, 5))):
                cls, band = int(rng.integers(2)), int(rng.integers(3))
                sig = self.SIGMA[band] * rng.uniform(0.8, 1.25)
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sig * sig))
                x = x + self.colors[cls][:, None, None] * blob
                objs.append((cy, cx, sig, cls, band))
            xs.append(x + 0.2 * rng.normal(size=self.shape))
            scenes.append(objs)
        x = np.clip(np.stack(xs), -3.0, 3.0)
        x = (np.round(x * 256.0) / 256.0).astype(np.float16).astype(np.float32)
        return x, None, scenes

    def targets(self, scenes, grid):
        cell = self.shape[1] / grid
        g = (np.arange(grid) + 0.5) * cell
        gy, gx = np.meshgrid(g, g, indexing="ij")
        out = np.full((len(scenes), 3, 7, grid, grid), 0.5)
        for i, objs in enumerate(scenes):
            best = np.zeros((3, grid, grid))
            for cy, cx, sig, cls, band in objs:
                heat = np.exp(-((gy - cy) ** 2 + (gx - cx) ** 2) / (2 * (0.75 * cell) ** 2))
                upd = heat > best[band]
                best[band] = np.where(upd, heat, best[band])
                vals = (
                    0.5 + 0.4 * np.clip((cx - gx) / cell, -1, 1),
                    0.5 + 0.4 * np.clip((cy - gy) / cell, -1, 1),
                    0.5 + 0.4 * np.log(sig / self.SIGMA[band]) / np.log(1.25),
                    0.5 + 0.4 * np.log(sig / self.SIGMA[band]) / np.log(1.25),
                )
                for j, v in enumerate(vals):
                    out[i, band, j] = np.where(upd, 0.5 + heat * (v - 0.5), out[i, band, j])
                for j in (0, 1):
                    v = 0.5 + heat * (0.45 if j == cls else -0.45)
                    out[i, band, 5 + j] = np.where(upd, v, out[i, band, 5 + j])
            out[i, :, 4] = best
        return np.clip(out.reshape(len(scenes), 21, grid, grid), 0.02, 0.98)


def build_yolo(rng, chans=(8, 16, 32, 64, 96)):
    b = TorchBuilder("yolo_tiny_96", rng)
    x, cin = "input", 3
    for i, c in enumerate(chans):
        x = b.leaky_relu(b.bn(b.conv(x, cin, c, 3), c))
        cin = c
        if i == 3:
            f12 = x  # 64 x 12 x 12
        if i < 4:
            x = b.maxpool(x, 2, 2)
    f6 = x  # 96 x 6 x 6
    na = 3 * (5 + 2)
    p6 = b.sigmoid(b.conv(f6, cin, na, 1, bias=True, name="head6"))
    b.output(b.transpose(p6, [0, 2, 3, 1]), "det_6", (6, 6, na))
    lat = b.leaky_relu(b.bn(b.conv(f6, cin, 32, 1), 32))
    up = b.resize2x(lat, "nearest")  # 32 x 12 x 12
    g12 = b.leaky_relu(b.bn(b.conv(b.concat([up, f12]), 32 + chans[3], 32, 3), 32))
    p12 = b.sigmoid(b.conv(g12, 32, na, 1, bias=True, name="head12"))
    b.output(b.transpose(p12, [0, 2, 3, 1]), "det_12", (12, 12, na))
    data = DetSynth(rng, (3, 96, 96))

    def fit(x_fit, _labels, scenes):
        ff6, ff12 = feats(b, x_fit, [f6, g12])
        for name, f, grid in (("head6", ff6, 6), ("head12", ff12, 12)):
            t = pixels(logit(data.targets(scenes, grid)))
            # (strong ridge: weaker ones leave large weights that amplify quantization noise)
            w, bias = ridge_readout(pixels(f), t, lam=1.0)
            b.inits[f"{name}.weight"] = w.reshape(na, f.shape[1], 1, 1)
            b.inits[f"{name}.bias"] = bias

    return Net(b, (3, 96, 96), data, fit, {"det_6": "dense", "det_12": "dense"})


# --- 4. TCN keyword spotting -----------------------------------------------------------------


def build_kws_tcn(rng, classes=12, ch=32, dilations=(2, 4, 8)):
    b = TorchBuilder("kws_tcn_49x10", rng)
    # F.pad(x, (0, 0, 2, 2), mode="reflect"): time axis, 2 each side -> 53 x 10
    x = b.pad("input", [0, 0, 2, 0, 0, 0, 2, 0], "reflect")
    x = b.prelu(b.bn(b.conv(x, 1, ch, (5, 3), pad=0), ch), ch)  # 49 x 8
    for d in dilations:
        # F.pad(x, (1, 1, d, d)) + Conv2d(ch, ch, 3, dilation=(d, 1)): same size
        y = b.pad(x, [0, 0, d, 1, 0, 0, d, 1], "constant", 0.0)
        y = b.conv(y, ch, ch, 3, pad=0, dilation=(d, 1))
        y = b.prelu(b.bn(y, ch, gamma=RES_GAMMA), ch)
        x = b.add(x, y)
    feat = b.squeeze(b.reduce_mean(x, [2, 3]), [2, 3])
    b.gemm(feat, ch, classes, name="head", out="logits")
    b.outs.append(("logits", (classes,)))

    def fit(x_fit, y_fit, aux):
        (f,) = feats(b, x_fit, [feat])
        # (a nearest-class-mean readout of these 32 averaged features reaches ~80% on the
        # synthetic labels, with margins below ORT's own quantization error)
        b.inits["head.weight"], b.inits["head.bias"] = lda_readout(f, y_fit, classes)

    return Net(b, (1, 49, 10), Synth(rng, (1, 49, 10), classes), fit, {"logits": "class"}, classes)


def ort_run_all(model, x, names):
    s = session(model)
    res = [s.run(names, {"input": x[i : i + 1]}) for i in range(len(x))]
    return {n: np.concatenate([r[j] for r in res]) for j, n in enumerate(names)}


def generate_v2(build, seed, n_fit, n_calib, n_inputs, knobs, out_root):
    """Make, quantize and record one opset-17 network; returns its directory name."""
    global MIX, VAR_FLOOR, RES_GAMMA
    MIX, VAR_FLOOR, RES_GAMMA = knobs
    rng = np.random.default_rng(seed)
    net = build(rng)
    b = net.b
    SHAPES[b.name] = net.in_shape
    draw = lambda n: (tuple(net.data.sample(n)) + (None,))[:3]  # noqa: E731 (Synth: x, y)
    x_fit, y_fit, aux = draw(n_fit)
    estimate_bn(b, x_fit, rng)
    net.fit(x_fit, y_fit, aux)
    model = b.model(net.in_shape)
    onnx.checker.check_model(model, full_check=True)
    calib, _, _ = draw(n_calib)
    inputs, labels, _ = draw(n_inputs)

    name = b.name
    out = os.path.join(out_root, name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    folded = clean(fold_bn(onnx.load_from_string(model.SerializeToString())))
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    files = {
        "model.onnx": folded,
        "model_qdq_u8.onnx": quantize(folded, calib, QuantFormat.QDQ, QuantType.QUInt8),
        "model_qdq_s8.onnx": quantize(folded, calib, QuantFormat.QDQ, QuantType.QInt8),
        "model_qop.onnx": quantize(
            gemm_to_matmul_add(folded), calib, QuantFormat.QOperator, QuantType.QUInt8,
            op_types=["Conv", "MatMul"],
        ),
    }
    names = [o for o, _ in b.outs]
    single = names == ["logits"]
    ref = ort_run_all(files["model.onnx"], inputs, names)
    info = {"inputs": len(inputs), "calib": len(calib), "opset": OPSET_NEW}
    if not single:
        info["outputs"] = {o: [1, *s] for o, s in b.outs}
    for o in names:
        p = "" if single else o + "."
        if net.kinds[o] == "class":
            r = ref[o]
            srt = np.sort(r, axis=1)
            margin = srt[:, -1] - srt[:, -2]
            info[p + "classes"] = net.classes
            info[p + "float_accuracy_synthetic_labels"] = float((r.argmax(1) == labels).mean())
            info[p + "float_min_top1_margin"] = float(margin.min())
            if r.ndim > 2:  # per pixel
                info[p + "float_top1_margin_p1"] = float(np.percentile(margin, 1))
                info[p + "float_top1_margin_p50"] = float(np.median(margin))
        else:
            info[p + "float_min"] = float(ref[o].min())
            info[p + "float_max"] = float(ref[o].max())
            info[p + "float_std"] = float(ref[o].std())
    for fname, m in files.items():
        onnx.save(m, os.path.join(out, fname))
        ys = ort_run_all(m, inputs, names)
        stem = fname[: -len(".onnx")]
        for o in names:
            y = ys[o]
            suffix = "" if single else "." + o
            np.save(os.path.join(out, f"ort_{stem}{suffix}.npy"), y.astype(np.float32))
            if fname == "model.onnx":
                continue
            key = ("" if single else o + ".") + stem[len("model_") :]
            if net.kinds[o] == "class":
                info[f"{key}_top1_vs_float"] = float((y.argmax(1) == ref[o].argmax(1)).mean())
            info[f"{key}_mean_abs_vs_float"] = float(np.abs(y - ref[o]).mean())
            info[f"{key}_max_abs_vs_float"] = float(np.abs(y - ref[o]).max())
    np.save(os.path.join(out, "calib.npy"), calib.astype(np.float16))
    np.save(os.path.join(out, "inputs.npy"), inputs.astype(np.float16))
    if labels is not None:
        np.save(os.path.join(out, "labels.npy"), labels)
    with open(os.path.join(out, "ort_reference.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print(name, json.dumps(info, indent=1), flush=True)
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "conformance"))
    ap.add_argument(
        "--only",
        help="one of mobilenetv2, dscnn, resnet, mobilenetv3, unet, yolo, kws_tcn",
    )
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

    nets_v2 = [
        # builder, seed, fit samples, calib, test inputs, (MIX, VAR_FLOOR, RES_GAMMA)
        # (opset 17; fewer test inputs for the big dense outputs, see the README)
        (build_mobilenetv3, 4, 384, 4, 6, (0.2, 0.5, (0.05, 0.15))),
        (build_unet, 5, 64, 4, 2, (0.3, 0.25, (0.1, 0.3))),
        (build_yolo, 6, 256, 3, 3, (0.3, 0.25, (0.1, 0.3))),
        (build_kws_tcn, 7, 512, 48, 64, (1.0, 0.25, (0.3, 0.7))),
    ]
    for build, seed, n_fit, n_calib, n_inputs, knobs in nets_v2:
        if args.only and build.__name__ != "build_" + args.only:
            continue
        t0 = time.time()
        name = generate_v2(build, seed, n_fit, n_calib, n_inputs, knobs, args.out)
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
