"""Width slicing of a full-width float ONNX model by its edgeslim manifest (numpy + onnx only).

This is an independent executable reading of docs/manifest.md: given the full-width float
`model.onnx` and a width configuration ``{segment: multiplier}``, it builds the narrower float
ONNX model the manifest describes (first-k slicing of Conv/Gemm/MatMul weights with the
`channel_rule`, depthwise convs keeping in = out, Flatten keeping the first c*H*W features, the
`per_width` channel_scale/bias applied), so ONNX Runtime can run it and be compared with the
trainer's PyTorch outputs at that width. It imports no PyTorch; the trainer and models/check.py
both use it.

Segments have roles (`role`: "encoder" | "decoder"; default: the first segment is the encoder,
every other a decoder). Encoder-role segments are a prefix of the list: the encoder's stages,
each with its own widths. Besides slicing, `slice_model` records which segments each tensor's
active channel count depends on (`info["deps"]`) and, for every op with parameters, the
segments its parameters depend on (`info["op_deps"]`: its own segment plus its input's), so a
checker can enforce "its own segment and at most one other".
"""

import copy
import json
import math

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

MANIFEST_KEY = "edgeslim.manifest"

# Ops through which the active channel count passes unchanged (channel axis 1).
PASS_THROUGH = {"Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Identity",
                "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish"}


def roles(manifest):
    """Role of every segment, in order: explicit `role`, else encoder for the first segment and
    decoder for the others."""
    return [s.get("role", "encoder" if i == 0 else "decoder")
            for i, s in enumerate(manifest["segments"])]


def encoder_stages(manifest):
    """Names of the encoder-role segments (the stages, in execution order)."""
    return [s["name"] for s, r in zip(manifest["segments"], roles(manifest)) if r == "encoder"]


def active(m, c, rule):
    """active(m, C) = min(C, max(min, divisor * ceil(m * C / divisor - 1e-6))), in f64."""
    div = int(rule.get("divisor", 1))
    mn = int(rule.get("min", 1))
    return min(c, max(mn, div * math.ceil(float(m) * c / div - 1e-6)))


def get_manifest(model):
    for p in model.metadata_props:
        if p.key == MANIFEST_KEY:
            return json.loads(p.value)
    return None


def segment_of(name, manifest):
    """Segment of an ONNX node name: explicit `nodes` lists win, then the longest `node_prefix`
    that starts the name, else the first segment."""
    segs = manifest["segments"]
    for s in segs:
        if name in s.get("nodes", []):
            return s["name"]
    best, best_len = segs[0]["name"], -1
    for s in segs:
        p = s.get("node_prefix")
        if p and name.startswith(p) and len(p) > best_len:
            best, best_len = s["name"], len(p)
    return best


def _const_values(graph):
    vals = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
    return vals


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def full_shapes(model):
    """Static shapes of every tensor of the full-width model."""
    inf = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inf.graph.value_info) + list(inf.graph.input) + list(inf.graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    return shapes


class SliceError(Exception):
    pass


def slice_model(model, widths, manifest=None):
    """Return (sliced ModelProto, info) for the width config `widths` = {segment: multiplier}.

    info["active"] maps tensor names to their active channel counts; info["layers"] lists
    (node, segment, k_in, k_out, groups, per_width_applied); info["deps"] maps tensor names to
    the frozenset of segments their active count depends on; info["op_deps"] maps each node
    with parameters to {"segment": its segment, "deps": segments its parameters depend on}."""
    manifest = manifest or get_manifest(model)
    if manifest is None:
        raise SliceError("model has no edgeslim.manifest")
    rule = manifest["channel_rule"]
    segs = {s["name"]: s for s in manifest["segments"]}
    for s in segs:
        if s not in widths:
            raise SliceError(f"width config lacks segment {s}")
        if float(widths[s]) not in [float(w) for w in segs[s]["widths"]]:
            raise SliceError(f"width {widths[s]} not among {segs[s]['widths']} of segment {s}")
    fixed = set(manifest.get("fixed_channels", []))
    graph_outputs = {o.name for o in model.graph.output}
    per_width = {p["node"]: p["widths"] for p in manifest.get("per_width", [])}

    shapes = full_shapes(model)
    consts = _const_values(model.graph)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    new_inits = {}
    act = {}  # tensor -> active channels (axis 1)
    dep = {}  # tensor -> segments its active count depends on
    op_deps = {}
    # a segment with a single width never changes a count
    slim_segs = {s for s in segs if len(segs[s]["widths"]) > 1}
    for i in model.graph.input:
        if i.name not in inits:
            act[i.name] = shapes[i.name][1]
            dep[i.name] = frozenset()
    layers = []
    used_per_width = set()
    out = copy.deepcopy(model)
    new_nodes = []

    def chan(t):
        if t not in act:
            raise SliceError(f"no active count known for tensor {t}")
        return act[t]

    def deps_of(*ts):
        out = frozenset()
        for t in ts:
            out |= dep.get(t, frozenset())
        return out

    for node in model.graph.node:
        n = copy.deepcopy(node)
        seg = segment_of(node.name, manifest)
        m = float(widths[seg])
        widx = [float(w) for w in segs[seg]["widths"]].index(m)
        op = node.op_type
        if op == "Constant":
            new_nodes.append(n)
            continue
        if op in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            x = node.input[0]
            kin = chan(x)
            is_fixed = node.name in fixed or any(o in graph_outputs for o in node.output)
            out_dep = frozenset() if is_fixed or seg not in slim_segs else frozenset([seg])
            if op == "ConvTranspose":
                w = inits[node.input[1]]  # [C_in, C_out / group, kH, kW]
                if int(_attr(node, "group", 1)) != 1:
                    raise SliceError(f"{node.name}: grouped ConvTranspose is not slimmable")
                cout = w.shape[1]
                kout = cout if is_fixed else active(m, cout, rule)
                wn = w[:kin, :kout]
                b = inits[node.input[2]][:kout] if len(node.input) > 2 and node.input[2] else None
                new_g = 1
            elif op == "Conv":
                w = inits[node.input[1]]
                cout = w.shape[0]
                g = int(_attr(node, "group", 1))
                cin_full = shapes[x][1]
                if g == 1:
                    kout = cout if is_fixed else active(m, cout, rule)
                    wn = w[:kout, :kin]
                    new_g = 1
                elif g == cin_full and w.shape[1] == 1:
                    mult = cout // g
                    kout = kin * mult
                    wn = w[:kout]
                    new_g = kin
                    out_dep = dep[x]
                else:
                    raise SliceError(f"{node.name}: grouped conv (group={g}) is not slimmable")
                b = inits[node.input[2]][:kout] if len(node.input) > 2 and node.input[2] else None
                for a in n.attribute:
                    if a.name == "group":
                        a.i = new_g
            elif op == "Gemm":
                if float(_attr(node, "alpha", 1.0)) != 1.0 or float(_attr(node, "beta", 1.0)) != 1.0:
                    raise SliceError(f"{node.name}: Gemm alpha/beta != 1 unsupported")
                if int(_attr(node, "transA", 0)) != 0:
                    raise SliceError(f"{node.name}: transA unsupported")
                w = inits[node.input[1]]
                tb = int(_attr(node, "transB", 0))
                cout = w.shape[0] if tb else w.shape[1]
                kout = cout if is_fixed else active(m, cout, rule)
                wn = w[:kout, :kin] if tb else w[:kin, :kout]
                b = inits[node.input[2]][:kout] if len(node.input) > 2 and node.input[2] else None
                new_g = None
            else:  # MatMul with constant right operand [K, N]
                w = inits[node.input[1]]
                cout = w.shape[1]
                kout = cout if is_fixed else active(m, cout, rule)
                wn = w[:kin, :kout]
                b = None
                new_g = None
            pw = per_width.get(node.name)
            applied = False
            if pw is not None:
                if len(pw) != len(segs[seg]["widths"]):
                    raise SliceError(f"per_width of {node.name}: {len(pw)} entries, segment {seg} "
                                     f"has {len(segs[seg]['widths'])} widths")
                e = pw[widx]
                if e is not None:
                    cs = np.asarray(e["channel_scale"], dtype=np.float64)
                    bb = np.asarray(e["bias"], dtype=np.float64)
                    if len(cs) != kout or len(bb) != kout:
                        raise SliceError(f"per_width of {node.name} at width {m}: {len(cs)} scales, "
                                         f"{len(bb)} biases, {kout} active channels")
                    if op == "Conv" or (op == "Gemm" and tb):
                        shp = (-1,) + (1,) * (wn.ndim - 1)
                        wn = (wn.astype(np.float64) * cs.reshape(shp)).astype(np.float32)
                    elif op == "ConvTranspose":
                        wn = (wn.astype(np.float64) * cs.reshape(1, -1, 1, 1)).astype(np.float32)
                    else:
                        wn = (wn.astype(np.float64) * cs.reshape(1, -1)).astype(np.float32)
                    b = bb.astype(np.float32)
                    applied = True
                    if op == "MatMul":
                        raise SliceError(f"{node.name}: per_width on MatMul needs the following Add")
                used_per_width.add(node.name)
            wname = node.name + "/W@sliced"
            new_inits[wname] = np.ascontiguousarray(wn)
            n.input[1] = wname
            if b is not None:
                bname = node.name + "/B@sliced"
                new_inits[bname] = np.ascontiguousarray(b.astype(np.float32))
                if len(n.input) > 2:
                    n.input[2] = bname
                else:
                    n.input.append(bname)
            act[node.output[0]] = kout
            dep[node.output[0]] = out_dep
            op_deps[node.name] = {"segment": seg, "deps": dep[x] | frozenset([seg])}
            layers.append((node.name, seg, kin, kout, new_g, applied))
        elif op in PASS_THROUGH:
            act[node.output[0]] = chan(node.input[0])
            dep[node.output[0]] = deps_of(node.input[0])
            if op == "Clip":
                for extra in node.input[1:]:
                    if extra and extra in inits:
                        new_inits[extra] = inits[extra]
        elif op == "Softmax":
            a = chan(node.input[0])
            if a != shapes[node.input[0]][1]:
                raise SliceError(f"{node.name}: Softmax over a slimmed axis")
            act[node.output[0]] = a
            dep[node.output[0]] = deps_of(node.input[0])
        elif op == "Resize":
            # channels pass through; a `sizes` input names the channel count: rewrite it
            act[node.output[0]] = chan(node.input[0])
            dep[node.output[0]] = deps_of(node.input[0])
            if len(node.input) > 3 and node.input[3]:
                sz = np.array(inits[node.input[3]], dtype=np.int64)
                sz[1] = act[node.output[0]]
                sname = node.name + "/sizes@sliced"
                new_inits[sname] = sz
                n.input[3] = sname
        elif op == "Mul":
            a_in = [i for i in node.input if i not in inits and i not in consts]
            c_in = [i for i in node.input if i in inits]
            if len(a_in) == 2:
                ka, kb = chan(a_in[0]), chan(a_in[1])
                if ka != kb:
                    raise SliceError(f"{node.name}: Mul of {ka} and {kb} active channels")
                act[node.output[0]] = ka
                dep[node.output[0]] = deps_of(*a_in)
            elif len(a_in) == 1 and len(c_in) == 1:
                k = chan(a_in[0])
                c = inits[c_in[0]]
                if c.size > 1:  # per-channel constant [C], [C, 1, 1] or [1, C, 1, 1]: first-k
                    cname = node.name + "/C@sliced"
                    if c.ndim == 4:
                        cn = c[:, :k]
                    else:
                        cn = c[:k]
                    new_inits[cname] = np.ascontiguousarray(cn)
                    n.input[list(node.input).index(c_in[0])] = cname
                    op_deps[node.name] = {"segment": seg, "deps": deps_of(a_in[0]) | {seg}}
                act[node.output[0]] = k
                dep[node.output[0]] = deps_of(a_in[0])
            else:
                raise SliceError(f"{node.name}: unsupported Mul inputs")
        elif op == "Flatten":
            if int(_attr(node, "axis", 1)) != 1:
                raise SliceError(f"{node.name}: Flatten axis != 1")
            shp = shapes[node.input[0]]
            act[node.output[0]] = chan(node.input[0]) * int(np.prod(shp[2:]))
            dep[node.output[0]] = deps_of(node.input[0])
        elif op == "Add":
            a_in = [i for i in node.input if i not in inits and i not in consts]
            c_in = [i for i in node.input if i in inits]
            if len(a_in) == 2:
                ka, kb = chan(a_in[0]), chan(a_in[1])
                if ka != kb:
                    raise SliceError(f"{node.name}: Add of {ka} and {kb} active channels")
                act[node.output[0]] = ka
                dep[node.output[0]] = deps_of(*a_in)
            elif len(a_in) == 1 and len(c_in) == 1:
                k = chan(a_in[0])
                c = inits[c_in[0]]
                cname = node.name + "/C@sliced"
                new_inits[cname] = np.ascontiguousarray(c[..., :k] if c.ndim >= 1 and c.shape[-1] > 1 else c)
                n.input[list(node.input).index(c_in[0])] = cname
                act[node.output[0]] = k
                dep[node.output[0]] = deps_of(a_in[0])
            else:
                raise SliceError(f"{node.name}: unsupported Add inputs")
        elif op == "Concat":
            if int(_attr(node, "axis")) != 1:
                raise SliceError(f"{node.name}: Concat not over channels")
            tot = 0
            for i, t in enumerate(node.input):
                k = chan(t)
                if i < len(node.input) - 1 and (k != shapes[t][1] or deps_of(t)):
                    raise SliceError(f"{node.name}: Concat input {t} is slimmable but not last "
                                     f"(its channels depend on {sorted(deps_of(t))})")
                tot += k
            act[node.output[0]] = tot
            dep[node.output[0]] = deps_of(*node.input)
        elif op == "Reshape":
            k = chan(node.input[0])
            if k != shapes[node.input[0]][1]:
                raise SliceError(f"{node.name}: Reshape of a slimmed tensor")
            act[node.output[0]] = k
            dep[node.output[0]] = deps_of(node.input[0])
            new_inits[node.input[1]] = inits[node.input[1]]
        else:
            raise SliceError(f"{node.name}: op {op} not supported by the slicer")
        new_nodes.append(n)

    unknown = set(per_width) - {n.name for n in model.graph.node}
    if unknown:
        raise SliceError(f"per_width names unknown nodes: {sorted(unknown)}")

    # Keep initializers still referenced unchanged (e.g. Clip bounds, Reshape shapes).
    referenced = {i for n in new_nodes for i in n.input}
    for name, arr in inits.items():
        if name in referenced and name not in new_inits:
            new_inits[name] = arr
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    del out.graph.initializer[:]
    out.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in new_inits.items())
    del out.graph.value_info[:]
    for o in out.graph.output:
        k = act.get(o.name)
        dims = o.type.tensor_type.shape.dim
        if k is not None and len(dims) >= 2:
            dims[1].dim_value = k
    return out, {"active": act, "layers": layers, "deps": dep, "op_deps": op_deps}


def count_macs(model):
    """Multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul nodes of a (possibly sliced)
    float model (a ConvTranspose: every input position times its weight tensor)."""
    shapes = full_shapes(model)
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    per_node = {}
    for n in model.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            o = shapes[n.output[0]]
            macs = int(np.prod(o)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            w = inits[n.input[1]]
            i = shapes[n.input[0]]
            macs = int(np.prod(i[2:])) * int(np.prod(w))
        elif n.op_type == "Gemm":
            w = inits[n.input[1]]
            macs = int(np.prod(w))
        elif n.op_type == "MatMul" and n.input[1] in inits:
            macs = int(np.prod(inits[n.input[1]]))
        else:
            continue
        per_node[n.name] = macs
        total += macs
    return total, per_node


def run_ort(model, x, batch_one=True):
    """Run a model with onnxruntime over x [N, ...] one sample at a time (static batch 1)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    # ORT's fused int8 kernels on a CPU without VNNI (AVX2 u8 x s8 `vpmaddubsw`) saturate their
    # 16-bit pair sums, so its optimized session's int8 results depend on the CPU. The
    # unoptimized session runs QDQ as Dequantize -> float op -> Quantize: the same on every CPU.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    onames = [o.name for o in sess.get_outputs()]
    outs = {o: [] for o in onames}
    for i in range(x.shape[0]):
        r = sess.run(onames, {iname: x[i:i + 1].astype(np.float32)})
        for o, v in zip(onames, r):
            outs[o].append(v)
    return {o: np.concatenate(v, 0) for o, v in outs.items()}
