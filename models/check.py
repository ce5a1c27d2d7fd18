#!/usr/bin/env python3
"""Checks of the bundled models (no PyTorch: numpy, onnx, onnxruntime, jsonschema if present).

For every models/<name>/ holding a model.onnx:
  files      all companion files of docs/manifest.md exist with the stated dtypes and shapes
  onnx       model.onnx / model_qdq.onnx load and pass onnx.checker; opset 13; static batch-1
             shapes; float graph uses only the allowed ops; QDQ graph only standard-domain ops
  manifest   the manifest validates against docs/manifest.schema.json plus the semantic rules
             the schema cannot state (roles: encoder stages a prefix of the segments);
             model_qdq.onnx carries the same manifest; node membership: every task output is
             produced in its task's segment, an encoder stage reads only its own and earlier
             stages' tensors, a decoder only encoder-stage tensors and its own (in both graphs);
             width dependence: every op with parameters depends on the widths of its own
             segment and at most one other (an earlier stage for a stage, a stage for a decoder)
  golden     ONNX Runtime at full width matches golden.npz (abs 1e-4)
  accuracy   accuracy.json's figures reproduced from eval.npz: "accuracy" models (every width
             config listed) the full-width float and int8 accuracies; dense models ("miou",
             "rmse" tasks, per-config "metrics") the float metrics of the full-width and
             all-narrowest configs (ORT on model.onnx, sliced) and the int8 full width
             (model_qdq.onnx), over the whole test set (500 scenes for scenes-mtl)
  slicing    for every golden config (narrowest, mixed, ...), the model.onnx weights sliced per
             the manifest (channel_rule, per_width) and run in ONNX Runtime match golden (abs 1e-4)
  size       models/ stays under 14 MB
Prints "N passed, M failed"; exits 1 on any failure.

Usage: python models/check.py [model-name ...]
"""

import json
import os
import sys
import traceback

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import slicer  # noqa: E402  (models/slicer.py: the package's slicer, numpy + onnx)
from edgeslim_train import metrics as task_metrics  # noqa: E402  (numpy only)

TOL = 1e-4
ALLOWED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip",
               "Sigmoid", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
               "Concat", "Resize", "Softmax"}
QDQ_EXTRA = {"QuantizeLinear", "DequantizeLinear"}
FILES = ["model.onnx", "model_qdq.onnx", "eval.npz", "calib.npy", "golden.npz", "golden.json",
         "accuracy.json", "README.md"]
SIZE_LIMIT = 14 * 1024 * 1024
# Float metrics reproduced by ORT vs accuracy.json (PyTorch): a few pixels may flip argmax.
DENSE_TOL_FLOAT = {"miou": 2e-3, "pixel_accuracy": 1e-4, "rmse": 1e-4, "abs_rel": 1e-4}
# int8 across onnxruntime versions / CPUs
DENSE_TOL_INT8 = {"miou": 5e-3, "pixel_accuracy": 2e-3, "rmse": 2e-3, "abs_rel": 2e-3}


class CheckFailed(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def validate_schema(man):
    with open(os.path.join(ROOT, "docs", "manifest.schema.json")) as f:
        schema = json.load(f)
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        try:
            jsonschema.validate(man, schema)
        except jsonschema.ValidationError as e:
            raise CheckFailed(f"manifest does not validate against the schema: {e.message} "
                              f"at {list(e.absolute_path)}")
    else:  # small hand check of the schema's main points
        need(man.get("format") == "edgeslim.manifest/1", "format must be edgeslim.manifest/1")
        need(set(man) <= set(schema["properties"]), f"unknown keys {set(man) - set(schema['properties'])}")
        for k in schema["required"]:
            need(k in man, f"manifest lacks {k}")
        need(man["channel_rule"].get("kind") == "ceil", "channel_rule.kind must be ceil")
        for s in man["segments"]:
            need(isinstance(s.get("name"), str) and isinstance(s.get("widths"), list), f"bad segment {s}")
        for t in man["tasks"]:
            need(t.get("outputs") and isinstance(t.get("segment"), str), f"bad task {t}")


def semantic_checks(man, model):
    segs = man["segments"]
    names = [s["name"] for s in segs]
    need(len(set(names)) == len(names), f"segment names not unique: {names}")
    for s in segs:
        w = s["widths"]
        need(all(b > a for a, b in zip(w, w[1:])), f"segment {s['name']}: widths not increasing {w}")
        need(w[-1] == 1.0, f"segment {s['name']}: last width must be 1.0")
        need(all(0 < x <= 1 for x in w), f"segment {s['name']}: widths outside (0, 1]")
    rl = slicer.roles(man)
    need(rl[0] == "encoder", "the first segment must have the encoder role")
    n_enc = rl.count("encoder")
    need(rl[:n_enc] == ["encoder"] * n_enc,
         f"encoder-role segments must be a prefix of the segments: roles {rl}")
    tnames = [t["name"] for t in man["tasks"]]
    need(len(set(tnames)) == len(tnames), f"task names not unique: {tnames}")
    graph_outputs = [o.name for o in model.graph.output]
    owned = []
    for t in man["tasks"]:
        need(t["segment"] in names, f"task {t['name']}: unknown segment {t['segment']}")
        for o in t["outputs"]:
            need(o in graph_outputs, f"task {t['name']}: {o} is not a graph output")
            owned.append(o)
    need(len(set(owned)) == len(owned), "a graph output is owned by more than one task")
    node_names = {n.name for n in model.graph.node}
    for f in man.get("fixed_channels", []):
        need(f in node_names, f"fixed_channels names unknown node {f}")
    seg_widths = {s["name"]: s["widths"] for s in segs}
    for p in man.get("per_width", []):
        need(p["node"] in node_names, f"per_width names unknown node {p['node']}")
        seg = slicer.segment_of(p["node"], man)
        need(len(p["widths"]) == len(seg_widths[seg]),
             f"per_width {p['node']}: {len(p['widths'])} entries for {len(seg_widths[seg])} widths")
        for e in p["widths"]:
            if e is not None:
                need(len(e["channel_scale"]) == len(e["bias"]),
                     f"per_width {p['node']}: channel_scale and bias lengths differ")


def segment_checks(man, model):
    """Task outputs produced in their segment; an encoder stage reads only tensors of itself and
    earlier stages; a decoder reads only encoder-stage tensors and its own."""
    producer = {}
    seg_of = {}
    for n in model.graph.node:
        s = slicer.segment_of(n.name, man)
        seg_of[n.name] = s
        for o in n.output:
            producer[o] = n
    stages = slicer.encoder_stages(man)
    for t in man["tasks"]:
        for o in t["outputs"]:
            p = producer[o]
            need(seg_of[p.name] == t["segment"],
                 f"output {o} of task {t['name']} is produced by {p.name} in segment {seg_of[p.name]}")
    for n in model.graph.node:
        s = seg_of[n.name]
        for i in n.input:
            if i not in producer:
                continue
            ps = seg_of[producer[i].name]
            if s in stages:
                need(ps in stages and stages.index(ps) <= stages.index(s),
                     f"encoder stage {s} node {n.name} reads {i} of segment {ps}")
            else:
                need(ps in stages or ps == s, f"decoder {s} node {n.name} reads {i} of decoder {ps}")


def dependency_checks(man, model):
    """Each op with parameters depends on its own segment's width and at most one other's: an
    earlier stage for an encoder stage, an encoder stage for a decoder (the runtime keys the
    op's parameters on that pair)."""
    stages = slicer.encoder_stages(man)
    _, info = slicer.slice_model(model, {s["name"]: s["widths"][-1] for s in man["segments"]})
    for node, d in info["op_deps"].items():
        seg = d["segment"]
        others = sorted(d["deps"] - {seg})
        need(len(others) <= 1, f"{node} ({seg}) depends on the widths of {sorted(d['deps'])}")
        for o in others:
            if seg in stages:
                need(o in stages and stages.index(o) < stages.index(seg),
                     f"{node} (stage {seg}) depends on the width of {o}, not an earlier stage")
            else:
                need(o in stages, f"{node} (decoder {seg}) depends on the width of decoder {o}")


def check_model(d, name, report):
    path = lambda f: os.path.join(d, f)  # noqa: E731

    def step(label, fn):
        try:
            fn()
            report.append((f"{name}: {label}", None))
        except CheckFailed as e:
            report.append((f"{name}: {label}", str(e)))
        except Exception as e:  # noqa: BLE001
            report.append((f"{name}: {label}", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))

    st = {}

    def files():
        for f in FILES:
            need(os.path.isfile(path(f)), f"missing {f}")
        st["model"] = onnx.load(path("model.onnx"))
        st["qdq"] = onnx.load(path("model_qdq.onnx"))
        st["man"] = slicer.get_manifest(st["model"])
        need(st["man"] is not None, "model.onnx has no edgeslim.manifest in metadata_props")
        st["tasks"] = [t["name"] for t in st["man"]["tasks"]]
        inp = st["model"].graph.input[0].type.tensor_type
        shape = [dd.dim_value for dd in inp.shape.dim]
        need(inp.elem_type == onnx.TensorProto.FLOAT, "input is not float32")
        need(len(shape) == 4 and shape[0] == 1 and all(v > 0 for v in shape),
             f"input shape {shape} is not static NCHW batch 1")
        st["shape"] = shape
        st["metric"] = {t["name"]: t.get("metric", "accuracy") for t in st["man"]["tasks"]}
        for f in ("eval.npz", "val.npz"):
            if f == "val.npz" and not os.path.isfile(path(f)):
                continue  # optional
            ev = np.load(path(f))
            need(ev["x"].dtype == np.float32 and list(ev["x"].shape[1:]) == shape[1:],
                 f"{f} x: {ev['x'].dtype} {ev['x'].shape}")
            N, H, W = len(ev["x"]), shape[2], shape[3]
            for t in st["tasks"]:
                y = ev[f"y_{t}"]
                kind = st["metric"][t]
                if kind == "accuracy":
                    need(y.dtype == np.int64 and y.shape == (N,), f"{f} y_{t}: {y.dtype} {y.shape}")
                elif kind == "miou":
                    need(y.dtype == np.int64 and y.shape == (N, H, W), f"{f} y_{t}: {y.dtype} {y.shape}")
                else:
                    need(y.dtype == np.float32 and y.shape == (N, H, W) and bool((y > 0).all()),
                         f"{f} y_{t}: {y.dtype} {y.shape} (float32 [N, H, W] > 0)")
            if f == "eval.npz":
                st["eval"] = {k: ev[k] for k in ev.files}
        cal = np.load(path("calib.npy"))
        need(cal.dtype == np.float32 and list(cal.shape[1:]) == shape[1:], f"calib.npy {cal.dtype} {cal.shape}")
        with open(path("golden.json")) as f:
            st["gj"] = json.load(f)
        g = np.load(path("golden.npz"))
        st["golden"] = {k: g[k] for k in g.files}
        need(st["golden"]["x"].dtype == np.float32, "golden x not float32")
        for c in st["gj"]["configs"]:
            for t in st["tasks"]:
                k = f"out__{c['id']}__{t}"
                need(k in st["golden"], f"golden.npz lacks {k}")
        with open(path("accuracy.json")) as f:
            st["acc"] = json.load(f)
        need("float" in st["acc"] and "int8" in st["acc"], "accuracy.json lacks float/int8")
        st["dense"] = any(k != "accuracy" for k in st["metric"].values())

    step("files", files)
    if report[-1][1] is not None:
        return

    def onnx_checks():
        m, q = st["model"], st["qdq"]
        onnx.checker.check_model(m, full_check=True)
        onnx.checker.check_model(q)
        need(any(o.domain in ("", "ai.onnx") and o.version == 13 for o in m.opset_import),
             f"model.onnx opset {m.opset_import}")
        ops = {n.op_type for n in m.graph.node}
        need(ops <= ALLOWED_OPS, f"model.onnx uses ops outside the allowed set: {ops - ALLOWED_OPS}")
        qops = {n.op_type for n in q.graph.node}
        need(qops <= ALLOWED_OPS | QDQ_EXTRA, f"model_qdq.onnx ops {qops - ALLOWED_OPS - QDQ_EXTRA}")
        bad = [n.name for n in q.graph.node if n.domain not in ("", "ai.onnx")]
        need(not bad, f"model_qdq.onnx has non-standard-domain nodes {bad[:5]}")
        for o in m.graph.output:
            dims = [dd.dim_value for dd in o.type.tensor_type.shape.dim]
            need(all(v > 0 for v in dims), f"output {o.name} shape {dims} not static")

    def manifest_checks():
        validate_schema(st["man"])
        semantic_checks(st["man"], st["model"])
        qm = slicer.get_manifest(st["qdq"])
        need(qm == st["man"], "model_qdq.onnx manifest differs from model.onnx's")
        segment_checks(st["man"], st["model"])
        segment_checks(qm, st["qdq"])
        dependency_checks(st["man"], st["model"])

    def golden_full():
        gx = st["golden"]["x"]
        wide = [c for c in st["gj"]["configs"] if all(v == 1.0 for v in c["widths"].values())]
        need(wide, "golden.json has no all-widest config")
        outs = slicer.run_ort(st["model"], gx)
        for t in st["tasks"]:
            ref = st["golden"][f"out__{wide[0]['id']}__{t}"]
            err = float(np.abs(outs[t] - ref).max())
            need(err <= TOL, f"full width task {t}: max abs err {err:.3g} > {TOL}")

    def dense_accuracy():
        ev = st["eval"]
        segs = [s["name"] for s in st["man"]["segments"]]

        def reproduce(model, row, tol, what):
            for s in segs:
                need(s in row["widths"], f"accuracy.json {what} row lacks segment {s}")
            sm = model
            if set(row["widths"].values()) != {1.0}:
                sm, _ = slicer.slice_model(model, row["widths"])
            outs = slicer.run_ort(sm, ev["x"])
            for t in st["tasks"]:
                got = task_metrics.task_metric(st["metric"][t], outs[t], ev[f"y_{t}"])
                for k, v in got.items():
                    ref = row["metrics"][t][k]
                    need(abs(v - ref) <= tol[k] + 1e-12,
                         f"{what} {row['widths']} {t} {k}: ORT {v:.5f} vs accuracy.json {ref:.5f}")

        rows = st["acc"]["float"]
        for r in rows:
            need("metrics" in r and set(r["metrics"]) == set(st["tasks"]),
                 f"accuracy.json float row without metrics of every task: {r.get('widths')}")
        uniform = {}
        for r in rows:
            vals = set(r["widths"].values())
            if len(vals) == 1:
                uniform[vals.pop()] = r
        for s in st["man"]["segments"]:
            need(s["widths"] == st["man"]["segments"][0]["widths"],
                 "dense check expects one width list for every segment")
        for m in st["man"]["segments"][0]["widths"]:
            need(m in uniform, f"accuracy.json float lacks the uniform config {m}")
        need(len(rows) > len(uniform), "accuracy.json float has no mixed config")
        lo = st["man"]["segments"][0]["widths"][0]
        reproduce(st["model"], uniform[1.0], DENSE_TOL_FLOAT, "float")
        reproduce(st["model"], uniform[lo], DENSE_TOL_FLOAT, "float")
        qfull = [r for r in st["acc"]["int8"] if set(r["widths"].values()) == {1.0}]
        need(qfull, "accuracy.json int8 lacks the full-width config")
        reproduce(st["qdq"], qfull[0], DENSE_TOL_INT8, "int8")

    def accuracy():
        if st["dense"]:
            return dense_accuracy()
        ev = st["eval"]
        n = len(ev["x"])
        full = [r for r in st["acc"]["float"] if all(v == 1.0 for v in r["widths"].values())]
        need(len(full) == 1, "accuracy.json float lacks (or repeats) the full-width config")
        outs = slicer.run_ort(st["model"], ev["x"])
        for t in st["tasks"]:
            a = float((outs[t].argmax(1) == ev[f"y_{t}"]).mean())
            ref = full[0]["accuracy"][t]
            # PyTorch and ONNX Runtime may split a near-tie differently: allow one sample.
            need(abs(a - ref) <= 1.0 / n + 1e-9, f"float full width {t}: ORT {a:.4f} vs accuracy.json {ref:.4f}")
        # every width configuration present
        segs = st["man"]["segments"]
        want = 1
        for s in segs:
            want *= len(s["widths"])
        need(len(st["acc"]["float"]) == want, f"accuracy.json float has {len(st['acc']['float'])} "
             f"configs, expected {want}")
        qfull = [r for r in st["acc"]["int8"] if all(v == 1.0 for v in r["widths"].values())]
        need(qfull, "accuracy.json int8 lacks the full-width config")
        qouts = slicer.run_ort(st["qdq"], ev["x"])
        for t in st["tasks"]:
            a = float((qouts[t].argmax(1) == ev[f"y_{t}"]).mean())
            ref = qfull[0]["accuracy"][t]
            # int8 rounding may differ across onnxruntime versions: allow 0.5%.
            need(abs(a - ref) <= 0.005 + 1e-9, f"int8 full width {t}: ORT {a:.4f} vs accuracy.json {ref:.4f}")

    def slicing():
        gx = st["golden"]["x"]
        narrow = mixed = 0
        for c in st["gj"]["configs"]:
            vals = set(c["widths"].values())
            if vals == {1.0}:
                continue
            sm, _ = slicer.slice_model(st["model"], c["widths"])
            outs = slicer.run_ort(sm, gx)
            for t in st["tasks"]:
                err = float(np.abs(outs[t] - st["golden"][f"out__{c['id']}__{t}"]).max())
                need(err <= TOL, f"config {c['id']} task {t}: max abs err {err:.3g} > {TOL}")
            if len(vals) == 1:
                narrow += 1
            else:
                mixed += 1
        need(narrow >= 1 and mixed >= 1, f"golden has {narrow} uniform narrow and {mixed} mixed configs")

    step("onnx", onnx_checks)
    step("manifest", manifest_checks)
    step("golden full width", golden_full)
    step("accuracy", accuracy)
    step("slicing", slicing)


def main(argv):
    names = argv[1:] or sorted(n for n in os.listdir(HERE)
                               if os.path.isfile(os.path.join(HERE, n, "model.onnx")))
    report = []
    if not names:
        report.append(("models", "no bundled models found"))
    for n in names:
        check_model(os.path.join(HERE, n), n, report)
    total = 0
    for dp, _, fs in os.walk(HERE):
        if "__pycache__" in dp:
            continue
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    report.append((f"models/ size {total / 1e6:.2f} MB", None if total < SIZE_LIMIT else
                   f"models/ is {total} bytes, limit {SIZE_LIMIT}"))
    failed = 0
    for label, err in report:
        if err is None:
            print(f"ok    {label}")
        else:
            failed += 1
            print(f"FAIL  {label}: {err}")
    print(f"{len(report) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
