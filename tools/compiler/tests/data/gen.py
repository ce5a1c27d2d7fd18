"""Generates the compiler's tiny test models (run from this directory; outputs are committed).

python3 gen.py   # needs onnx, onnxruntime, numpy
"""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def w(*shape, scale=None):
    fan = np.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return (rng.standard_normal(shape) * (scale or 1.0 / np.sqrt(fan))).astype(np.float32)


def save(graph, path, manifest=None, opset=13):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if manifest is not None:
        helper.set_model_props(m, {"edgeslim.manifest": json.dumps(manifest)})
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def tiny_float():
    """Every float op kind: Conv+BN+Relu, MaxPool, depthwise Conv+Clip, 1x1 Conv, Add, Relu,
    AveragePool, Concat, Flatten+Gemm, Softmax; GlobalAveragePool+Flatten+MatMul."""
    nodes, inits = [], []
    inits += [init("c1.W", w(8, 3, 3, 3)), init("c1.B", w(8, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["x", "c1.W", "c1.B"], ["c1"], name="/c1/Conv", pads=[1, 1, 1, 1]))
    inits += [init("bn.s", (1 + 0.2 * rng.standard_normal(8)).astype(np.float32)),
              init("bn.b", w(8, scale=0.1)), init("bn.m", w(8, scale=0.1)),
              init("bn.v", (0.5 + rng.random(8)).astype(np.float32))]
    nodes.append(helper.make_node("BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="/bn/BN"))
    nodes.append(helper.make_node("Relu", ["bn"], ["r1"], name="/r1/Relu"))
    nodes.append(helper.make_node("MaxPool", ["r1"], ["p1"], name="/p1/MaxPool", kernel_shape=[2, 2], strides=[2, 2]))
    inits += [init("dw.W", w(8, 1, 3, 3)), init("dw.B", w(8, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["p1", "dw.W", "dw.B"], ["dw"], name="/dw/Conv", pads=[1, 1, 1, 1], group=8))
    inits += [init("lo", np.array(0.0, np.float32)), init("hi", np.array(6.0, np.float32))]
    nodes.append(helper.make_node("Clip", ["dw", "lo", "hi"], ["dwc"], name="/dw/Clip"))
    inits += [init("pw.W", w(8, 8, 1, 1)), init("pw.B", w(8, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["dwc", "pw.W", "pw.B"], ["pw"], name="/pw/Conv"))
    nodes.append(helper.make_node("Add", ["pw", "p1"], ["add"], name="/add/Add"))
    nodes.append(helper.make_node("Relu", ["add"], ["r2"], name="/r2/Relu"))
    nodes.append(helper.make_node("AveragePool", ["r2"], ["ap"], name="/ap/AveragePool", kernel_shape=[2, 2], strides=[2, 2]))
    inits += [init("c2.W", w(4, 8, 1, 1)), init("c2.B", w(4, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["ap", "c2.W", "c2.B"], ["c2"], name="/c2/Conv"))
    nodes.append(helper.make_node("Concat", ["ap", "c2"], ["cat"], name="/cat/Concat", axis=1))
    nodes.append(helper.make_node("Flatten", ["cat"], ["flat"], name="/flat/Flatten", axis=1))
    inits += [init("fc.W", w(10, 48)), init("fc.B", w(10, scale=0.1))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.W", "fc.B"], ["logits"], name="/fc/Gemm", transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="/sm/Softmax", axis=1))
    nodes.append(helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="/gap/GAP"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["gflat"], name="/gflat/Flatten", axis=1))
    inits += [init("mm.W", w(8, 3))]
    nodes.append(helper.make_node("MatMul", ["gflat", "mm.W"], ["aux"], name="/mm/MatMul"))
    g = helper.make_graph(
        nodes, "tiny_float",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10]),
         helper.make_tensor_value_info("aux", TensorProto.FLOAT, [1, 3])],
        inits)
    return g


def tiny_slim():
    """A slimmable two-task model: encoder (widths 0.5, 1) with a residual Add and per-width
    BN parameters on its stem; decoder `a` (0.25, 0.5, 1) conv + Flatten + Gemm; decoder `b`
    (0.5, 1) GAP + Gemm + Relu + Gemm."""
    nodes, inits = [], []
    inits += [init("stem.W", w(8, 3, 3, 3)), init("stem.B", w(8, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["x", "stem.W", "stem.B"], ["s"], name="/encoder/stem/Conv", pads=[1, 1, 1, 1], strides=[2, 2]))
    nodes.append(helper.make_node("Relu", ["s"], ["sr"], name="/encoder/stem/Relu"))
    inits += [init("b1.W", w(8, 8, 3, 3)), init("b1.B", w(8, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["sr", "b1.W", "b1.B"], ["b1"], name="/encoder/b1/Conv", pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Add", ["b1", "sr"], ["res"], name="/encoder/add/Add"))
    nodes.append(helper.make_node("Relu", ["res"], ["enc"], name="/encoder/out/Relu"))
    # decoder a
    inits += [init("a1.W", w(6, 8, 3, 3)), init("a1.B", w(6, scale=0.1))]
    nodes.append(helper.make_node("Conv", ["enc", "a1.W", "a1.B"], ["a1"], name="/a/conv/Conv", pads=[1, 1, 1, 1], strides=[2, 2]))
    nodes.append(helper.make_node("Relu", ["a1"], ["a1r"], name="/a/conv/Relu"))
    nodes.append(helper.make_node("Flatten", ["a1r"], ["af"], name="/a/flat/Flatten"))
    inits += [init("ah.W", w(5, 24)), init("ah.B", w(5, scale=0.1))]
    nodes.append(helper.make_node("Gemm", ["af", "ah.W", "ah.B"], ["out_a"], name="/a/head/Gemm", transB=1))
    # decoder b
    nodes.append(helper.make_node("GlobalAveragePool", ["enc"], ["bg"], name="/b/gap/GAP"))
    nodes.append(helper.make_node("Flatten", ["bg"], ["bf"], name="/b/flat/Flatten"))
    inits += [init("bh1.W", w(12, 8)), init("bh1.B", w(12, scale=0.1))]
    nodes.append(helper.make_node("Gemm", ["bf", "bh1.W", "bh1.B"], ["bh1"], name="/b/hidden/Gemm", transB=1))
    nodes.append(helper.make_node("Relu", ["bh1"], ["bh1r"], name="/b/hidden/Relu"))
    inits += [init("bh2.W", w(3, 12)), init("bh2.B", w(3, scale=0.1))]
    nodes.append(helper.make_node("Gemm", ["bh1r", "bh2.W", "bh2.B"], ["out_b"], name="/b/head/Gemm", transB=1))
    g = helper.make_graph(
        nodes, "tiny_slim",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out_a", TensorProto.FLOAT, [1, 5]),
         helper.make_tensor_value_info("out_b", TensorProto.FLOAT, [1, 3])],
        inits)
    manifest = {
        "format": "edgeslim.manifest/1",
        "channel_rule": {"kind": "ceil", "divisor": 1, "min": 1},
        "segments": [
            {"name": "encoder", "node_prefix": "/encoder/", "widths": [0.5, 1.0]},
            {"name": "a", "node_prefix": "/a/", "widths": [0.25, 0.5, 1.0]},
            {"name": "b", "node_prefix": "/b/", "widths": [0.5, 1.0]},
        ],
        "tasks": [
            {"name": "a", "outputs": ["out_a"], "segment": "a", "metric": "accuracy"},
            {"name": "b", "outputs": ["out_b"], "segment": "b", "metric": "accuracy"},
        ],
        "fixed_channels": [],
        "per_width": [
            {"node": "/encoder/stem/Conv",
             "widths": [{"channel_scale": [float(v) for v in 1 + 0.1 * rng.standard_normal(4)],
                         "bias": [float(v) for v in 0.1 * rng.standard_normal(4)]}, None]},
        ],
    }
    return g, manifest


def tiny_staged():
    """A dense two-task model with a three-stage encoder, each stage slimmable on its own:
    s0 (0.5, 1) conv; s1 (0.5, 1) strided conv with per-width BN parameters and a fixed-width
    skip branch; s2 (0.25, 0.5, 1) depthwise + pointwise. Decoder `seg` (0.5, 1): 1x1 conv,
    Concat after the fixed skip, 3x3 conv to 5 classes, nearest Resize x2. Decoder `depth`
    (0.5, 1): ConvTranspose x2, 1x1 conv, Sigmoid. Its own generator, so the other files do
    not change when it is added."""
    r = np.random.default_rng(11)

    def wr(*shape, scale=None):
        fan = np.prod(shape[1:]) if len(shape) > 1 else shape[0]
        return (r.standard_normal(shape) * (scale or 1.0 / np.sqrt(fan))).astype(np.float32)

    nodes, inits = [], []

    def conv(name, x, y, cout, cin, k, stride=1, group=1, act=True):
        inits.extend([init(name + ".W", wr(cout, cin // group, k, k)), init(name + ".B", wr(cout, scale=0.1))])
        nodes.append(helper.make_node("Conv", [x, name + ".W", name + ".B"], [y + "_c" if act else y],
                                      name=name + "/Conv", pads=[k // 2] * 4, strides=[stride] * 2, group=group))
        if act:
            nodes.append(helper.make_node("Relu", [y + "_c"], [y], name=name + "/Relu"))

    conv("/s0/stem", "x", "s0", 8, 3, 3)
    conv("/s1/down", "s0", "s1", 12, 8, 3, stride=2)
    conv("/s1/skip", "s1", "sk", 4, 12, 1)
    conv("/s2/dw", "s1", "s2dw", 12, 12, 3, group=12)
    conv("/s2/pw", "s2dw", "s2", 16, 12, 1)
    conv("/seg/in", "s2", "g1", 8, 16, 1)
    nodes.append(helper.make_node("Concat", ["sk", "g1"], ["gcat"], name="/seg/cat/Concat", axis=1))
    conv("/seg/head", "gcat", "g2", 5, 12, 3, act=False)
    inits.append(init("up.scales", np.array([1, 1, 2, 2], np.float32)))
    nodes.append(helper.make_node("Resize", ["g2", "", "up.scales"], ["out_seg"], name="/seg/up/Resize", mode="nearest"))
    inits.extend([init("/depth/up.W", wr(16, 6, 2, 2)), init("/depth/up.B", wr(6, scale=0.1))])
    nodes.append(helper.make_node("ConvTranspose", ["s2", "/depth/up.W", "/depth/up.B"], ["d1c"], name="/depth/up/ConvTranspose", strides=[2, 2], kernel_shape=[2, 2]))
    nodes.append(helper.make_node("Relu", ["d1c"], ["d1"], name="/depth/up/Relu"))
    conv("/depth/head", "d1", "d2", 1, 6, 1, act=False)
    nodes.append(helper.make_node("Sigmoid", ["d2"], ["out_depth"], name="/depth/out/Sigmoid"))
    g = helper.make_graph(
        nodes, "tiny_staged",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out_seg", TensorProto.FLOAT, [1, 5, 8, 8]),
         helper.make_tensor_value_info("out_depth", TensorProto.FLOAT, [1, 1, 8, 8])],
        inits)
    manifest = {
        "format": "edgeslim.manifest/1",
        "channel_rule": {"kind": "ceil", "divisor": 1, "min": 1},
        "segments": [
            {"name": "s0", "role": "encoder", "node_prefix": "/s0/", "widths": [0.5, 1.0]},
            {"name": "s1", "role": "encoder", "node_prefix": "/s1/", "widths": [0.5, 1.0]},
            {"name": "s2", "role": "encoder", "node_prefix": "/s2/", "widths": [0.25, 0.5, 1.0]},
            {"name": "seg", "node_prefix": "/seg/", "widths": [0.5, 1.0]},
            {"name": "depth", "node_prefix": "/depth/", "widths": [0.5, 1.0]},
        ],
        "tasks": [
            {"name": "seg", "outputs": ["out_seg"], "segment": "seg", "metric": "miou"},
            {"name": "depth", "outputs": ["out_depth"], "segment": "depth", "metric": "rmse"},
        ],
        "fixed_channels": ["/s1/skip/Conv"],
        "per_width": [
            {"node": "/s1/down/Conv",
             "widths": [{"channel_scale": [float(v) for v in 1 + 0.1 * r.standard_normal(6)],
                         "bias": [float(v) for v in 0.1 * r.standard_normal(6)]}, None]},
        ],
    }
    return g, manifest


def write_staged():
    g, man = tiny_staged()
    save(g, "tiny_staged.onnx", man)
    # The segmentation decoder also reads stage s1's slimmed output (a 1x1 conv added to its
    # own branch): its parameters would depend on the widths of s1 and s2. Refused.
    r = np.random.default_rng(12)
    g.initializer.extend([init("side.W", (0.3 * r.standard_normal((8, 12, 1, 1))).astype(np.float32))])
    g.node.extend([
        helper.make_node("Conv", ["s1", "side.W"], ["side"], name="/seg/side/Conv"),
        helper.make_node("Add", ["g1", "side"], ["g1s"], name="/seg/add/Add"),
    ])
    for n in g.node:
        if n.name == "/seg/cat/Concat":
            n.input[1] = "g1s"
    # Keep the nodes in topological order: the new ones before the Concat.
    nodes = sorted(g.node, key=lambda n: (n.name in ("/seg/side/Conv", "/seg/add/Add")) * 0)
    order = [n for n in nodes if n.name not in ("/seg/side/Conv", "/seg/add/Add")]
    at = [i for i, n in enumerate(order) if n.name == "/seg/cat/Concat"][0]
    extra = [n for n in nodes if n.name in ("/seg/side/Conv", "/seg/add/Add")]
    del g.node[:]
    g.node.extend(order[:at] + extra + order[at:])
    save(g, "tiny_staged_two_stages.onnx", man)



def write_staged_eval():
    """`tiny_staged_eval.npz` (48 inputs) and `tiny_staged_val.npz` (32 others) with the float
    model's own outputs as labels (the segmentation's argmax, the depth map), for the dense
    metrics, the per-stage search and the controllability report."""
    import onnxruntime as ort

    r = np.random.default_rng(13)
    sess = ort.InferenceSession("tiny_staged.onnx", providers=["CPUExecutionProvider"])
    # The test set (48 inputs), then a validation set of 32 other inputs.
    for name, n in [("tiny_staged_eval.npz", 48), ("tiny_staged_val.npz", 32)]:
        x = r.random((n, 3, 8, 8), dtype=np.float32)
        seg, depth = [], []
        for i in range(len(x)):
            s_out, d_out = sess.run(["out_seg", "out_depth"], {"x": x[i:i + 1]})
            seg.append(s_out[0].argmax(0))
            depth.append(d_out[0, 0])
        np.savez_compressed(name, x=x, y_seg=np.stack(seg).astype(np.int64),
                            y_depth=np.stack(depth).astype(np.float32))


def quantize(src, dst, fmt, act_type, ops=None):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    # Softmax stays float: tract 0.23.9 returns 1.0 for every element of a quantized
    # DQ -> Softmax -> Q (ONNX Runtime gives the probabilities).
    kw = {"op_types_to_quantize": ops or [
        "Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Concat", "Flatten", "Relu", "Clip", "BatchNormalization"]}
    quantize_static(src, dst, Reader(), quant_format=fmt, per_channel=True,
                    activation_type=act_type, weight_type=QuantType.QInt8, **kw)


if __name__ == "__main__":
    from onnxruntime.quantization import QuantFormat, QuantType

    calib = rng.random((32, 3, 8, 8), dtype=np.float32)
    np.save("calib.npy", calib)
    np.save("calib_bad_shape.npy", rng.random((4, 3, 9, 9), dtype=np.float32))
    save(tiny_float(), "tiny_float.onnx")
    g, man = tiny_slim()
    save(g, "tiny_slim.onnx", man)
    bad = dict(man)
    del bad["channel_rule"]
    save(g, "bad_manifest.onnx", bad)
    bad2 = json.loads(json.dumps(man))
    bad2["segments"][1]["widths"] = [0.25, 0.5, 0.9]
    save(g, "bad_widths.onnx", bad2)
    # QDQ, uint8 and int8 activations.
    quantize("tiny_float.onnx", "tiny_qdq_u8.onnx", QuantFormat.QDQ, QuantType.QUInt8)
    quantize("tiny_float.onnx", "tiny_qdq_s8.onnx", QuantFormat.QDQ, QuantType.QInt8)
    quantize("tiny_slim.onnx", "tiny_slim_qdq.onnx", QuantFormat.QDQ, QuantType.QUInt8)
    m = onnx.load("tiny_slim_qdq.onnx")
    helper.set_model_props(m, {"edgeslim.manifest": json.dumps(man)})
    onnx.save(m, "tiny_slim_qdq.onnx")
    # QOperator: standard ops only (Conv, MatMul); Gemm as MatMul + Add.
    qg = tiny_slim()[0]
    nodes = []
    for n in qg.node:
        if n.op_type == "Gemm":
            wname = n.input[1]
            for t in qg.initializer:
                if t.name == wname:
                    a = numpy_helper.to_array(t).T.copy()
                    t.CopyFrom(numpy_helper.from_array(a, wname))
            nodes.append(helper.make_node("MatMul", [n.input[0], wname], [n.output[0] + "_mm"], name=n.name + "_mm"))
            nodes.append(helper.make_node("Add", [n.output[0] + "_mm", n.input[2]], [n.output[0]], name=n.name + "_add"))
        else:
            nodes.append(n)
    del qg.node[:]
    qg.node.extend(nodes)
    save(qg, "tiny_slim_mm.onnx")
    quantize("tiny_slim_mm.onnx", "tiny_qop.onnx", QuantFormat.QOperator, QuantType.QUInt8, ["Conv", "MatMul"])
    # Malformed inputs.
    g = tiny_float()
    g.node.append(helper.make_node("Erf", ["aux"], ["aux_s"], name="/bad/Erf"))
    g.output[1].name = "aux_s"
    save(g, "unsupported_op.onnx")
    g = tiny_float()
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    save(g, "dynamic.onnx")
    write_staged()
    write_staged_eval()
