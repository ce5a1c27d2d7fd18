"""scenes-mtl: a dense controllable multi-task model (semantic segmentation + depth) trained with
edgeslim_train (models/edgeslim_train).

A shared encoder of 4 slimmable stages (per-stage widths, manifest roles "encoder") and two
slimmable decoders (`seg`: 11-class per-pixel logits, `depth`: per-pixel depth, linear),
each upsampling 4x4 -> 32x32 with ConvTranspose, a fixed-width skip from stage 1 concatenated
first, and a bilinear Resize (half_pixel) to 64x64. Data: models/train/data.py `scenes()`.

Usage: python models/train/scenes_mtl.py [--epochs N] [--limit N] [--reuse]
Writes models/scenes-mtl/ (docs/manifest.md companion files, val.npz, stats.json, README.md).
"""

import argparse
import os
import random
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(MODELS, "edgeslim_train"))  # the package, installed or not
sys.path.insert(0, HERE)

import data  # noqa: E402
from edgeslim_train import metrics as M  # noqa: E402
from edgeslim_train import recipe  # noqa: E402
from edgeslim_train.slim import (WIDTHS, ConvAct, SlimConv2d, SlimConvTranspose2d,  # noqa: E402
                                 set_config)

NAME = "scenes-mtl"
STAGES = ["enc1", "enc2", "enc3", "enc4"]
TASKS = {"seg": 11, "depth": 1}
SKIP_C = 8
HP = dict(epochs=11, bs=32, lr=3e-3, n_random=2, lam_ci=1.0, lam_depth=10.0, bg_weight=0.2,
          n_train=8000, n_val=500, n_test=500)


class Stage(nn.Module):
    """Encoder stage: 3x3 stride-2 conv + 3x3 conv, each with switchable BatchNorm and ReLU."""

    def __init__(self, seg, cin, cout, skip=0):
        super().__init__()
        self.down = ConvAct(seg, WIDTHS, cin, cout, 3, stride=2)
        self.conv = ConvAct(seg, WIDTHS, cout, cout, 3)
        # a fixed-width 1x1 projection (switchable BN, ReLU) read by the decoders as a skip
        self.skip = None
        if skip:
            self.skip = ConvAct(seg, WIDTHS, cout, skip, 1, fixed_out=True)

    def forward(self, x):
        y = self.conv(self.down(x))
        if self.skip is None:
            return y
        return y, self.skip(y)  # called here so the exporter scopes it under the stage


class DenseDecoder(nn.Module):
    """4x4 -> 32x32 by three (ConvTranspose k2 s2 + ReLU, 3x3 conv + ReLU) steps, the skip
    concatenated before the last conv, a fixed-width 1x1 head, bilinear x2 to 64x64.
    `head_bias` initializes the head's bias (depth: near the background depth; a Sigmoid head
    saturated at the background's 1.0 and stopped learning, so depth is predicted directly)."""

    def __init__(self, seg, cin, n_out, head_bias=0.0):
        super().__init__()
        W = WIDTHS
        self.up1 = SlimConvTranspose2d(seg, W, cin, 32, 2, 2)
        self.c1 = ConvAct(seg, W, 32, 32, 3, bn=False)
        self.up2 = SlimConvTranspose2d(seg, W, 32, 24, 2, 2)
        self.c2 = ConvAct(seg, W, 24, 24, 3, bn=False)
        self.up3 = SlimConvTranspose2d(seg, W, 24, 16, 2, 2)
        self.fuse = ConvAct(seg, W, SKIP_C + 16, 16, 3, bn=False)
        self.head = SlimConv2d(seg, W, 16, n_out, 1, bn=False, fixed_out=True)
        nn.init.constant_(self.head.bias, head_bias)
        self.resize = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, f, skip):
        y = self.c1(F.relu(self.up1(f)))
        y = self.c2(F.relu(self.up2(y)))
        y = F.relu(self.up3(y))
        y = self.fuse(torch.cat([skip, y], 1))  # the fixed-width skip first (Concat rule)
        return self.resize(self.head(y))


class ScenesNet(nn.Module):
    """Encoder stages enc1..enc4 (1x64x64 -> 16x32x32 -> 24x16x16 -> 48x8x8 -> 64x4x4) and the
    decoders `seg` and `depth`. forward returns ([seg, depth], enc4 features)."""

    def __init__(self):
        super().__init__()
        self.enc1 = Stage("enc1", 1, 16, skip=SKIP_C)
        self.enc2 = Stage("enc2", 16, 24)
        self.enc3 = Stage("enc3", 24, 48)
        self.enc4 = Stage("enc4", 48, 64)
        self.seg = DenseDecoder("seg", 64, TASKS["seg"])
        self.depth = DenseDecoder("depth", 64, TASKS["depth"], head_bias=0.95)
        self.tasks = list(TASKS)
        self.segments = STAGES + self.tasks
        self.roles = {s: ("encoder" if s in STAGES else "decoder") for s in self.segments}
        self.widths = {s: list(WIDTHS) for s in self.segments}
        self.exporting = False

    def set_config(self, cfg):
        set_config(self, cfg)

    def encode(self, x):
        f1, skip = self.enc1(x)
        return self.enc4(self.enc3(self.enc2(f1))), skip

    def forward(self, x):
        f, skip = self.encode(x)
        outs = [self.seg(f, skip), self.depth(f, skip)]
        if self.exporting:
            return tuple(outs)
        return outs, f


# --------------------------------------------------------------------------------------------
# Losses


def gt_loss_fn(y_seg, y_depth, hp):
    """Cross-entropy (background weighted `bg_weight`: 92% of the pixels) + lam_depth * MSE."""
    w = torch.ones(TASKS["seg"])
    w[0] = hp["bg_weight"]

    def f(outs):
        seg, depth = outs
        return (F.cross_entropy(seg, y_seg, weight=w)
                + hp["lam_depth"] * F.mse_loss(depth[:, 0], y_depth))
    return f


def teacher_fn(o):
    o = o.detach()
    return F.softmax(o, dim=1) if o.shape[1] > 1 else o


def distill_fn(lam_depth):
    """Per-pixel KL to the widest's softmax (mean over pixels) + lam_depth * MSE to its depth."""
    def f(outs, teachers):
        seg, depth = outs
        ts, td = teachers
        n, _, h, w = seg.shape
        kd = F.kl_div(F.log_softmax(seg, dim=1), ts, reduction="sum") / (n * h * w)
        return kd + lam_depth * F.mse_loss(depth, td)
    return f


# --------------------------------------------------------------------------------------------
# Metrics


def metrics(outs, Y):
    return {"seg": M.miou(outs["seg"], Y["seg"]), "depth": M.rmse(outs["depth"], Y["depth"])}


# --------------------------------------------------------------------------------------------
# Training


CKPT_DIR = os.environ.get("EDGESLIM_CKPT_DIR", "/tmp/edgeslim-ckpt")


def train(net, Xtr, Ytr, hp, log, Xval=None, Yval=None):
    X = torch.from_numpy(Xtr)
    Ys = torch.from_numpy(Ytr["seg"])
    Yd = torch.from_numpy(Ytr["depth"])
    n = len(X)
    spe = (n + hp["bs"] - 1) // hp["bs"]
    opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp["lr"], total_steps=hp["epochs"] * spe,
                                                pct_start=0.15)
    rng = random.Random(1)
    g = torch.Generator().manual_seed(2)
    distill = distill_fn(hp["lam_depth"])
    t0 = time.time()
    for ep in range(hp["epochs"]):
        net.train()
        perm = torch.randperm(n, generator=g)
        sums = {"gt": 0.0, "kd": 0.0, "ci": 0.0}
        for i in range(spe):
            idx = perm[i * hp["bs"]:(i + 1) * hp["bs"]]
            opt.zero_grad(set_to_none=True)
            r = recipe.sandwich_step(net, X[idx], gt_loss_fn(Ys[idx], Yd[idx], hp),
                                     distill, teacher=teacher_fn, n_random=hp["n_random"],
                                     lam_ci=hp["lam_ci"], rng=rng)
            opt.step()
            sched.step()
            for k in sums:
                sums[k] += r[k] / spe
            if ep == 0 and i == 9:
                log(f"  10 steps in {time.time() - t0:.1f}s")
        msg = (f"epoch {ep + 1}/{hp['epochs']}: gt {sums['gt']:.4f} kd {sums['kd']:.4f} "
               f"ci {sums['ci']:.4f} ({time.time() - t0:.0f}s)")
        if Xval is not None:
            net.eval()
            for cfg in (recipe.widest(net), recipe.narrowest(net)):
                m = metrics(recipe.predict(net, Xval[:200], cfg, bs=50),
                            {k: v[:200] for k, v in Yval.items()})
                msg += (f" | val200 @{cfg['enc1']}: miou {m['seg']['miou']:.3f} "
                        f"rmse {m['depth']['rmse']:.4f}")
        log(msg)
        os.makedirs(CKPT_DIR, exist_ok=True)  # per epoch, for inspection of a long run
        torch.save({"state": net.state_dict(), "epoch": ep + 1},
                   os.path.join(CKPT_DIR, "scenes-mtl-last-epoch.pt"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="N training scenes (smoke runs)")
    ap.add_argument("--reuse", action="store_true", help="export from the saved checkpoint")
    ap.add_argument("--train-only", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch.set_num_threads(int(os.environ.get("EDGESLIM_THREADS", "2")))
    hp = dict(HP)
    if a.epochs:
        hp["epochs"] = a.epochs
    if a.limit:
        hp["n_train"] = a.limit
    out_dir = os.path.join(MODELS, NAME)
    os.makedirs(out_dir, exist_ok=True)
    logf = open(os.path.join(out_dir, "train_log.txt"), "a" if a.reuse else "w")

    def log(s):
        print(f"[{NAME}] {s}", flush=True)
        logf.write(s + "\n")
        logf.flush()

    t0 = time.time()
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = data.scenes(hp["n_train"], hp["n_val"], hp["n_test"])
    log(f"scenes: train {Xtr.shape}, val {Xva.shape}, test {Xte.shape} ({time.time() - t0:.0f}s)")
    net = ScenesNet()
    ckpt = os.path.join(CKPT_DIR, f"{NAME}.pt")
    if a.reuse and os.path.exists(ckpt):
        saved = torch.load(ckpt)
        net.load_state_dict(saved["state"])
        train_s = saved["train_s"]
        log(f"reusing the checkpoint (trained in {train_s:.0f}s)")
    else:
        t0 = time.time()
        train(net, Xtr, Ytr, hp, log, Xva, Yva)
        recipe.recalibrate_bn(net, Xtr)
        train_s = time.time() - t0
        log(f"trained in {train_s:.0f}s (incl. BN recalibration)")
        os.makedirs(CKPT_DIR, exist_ok=True)
        torch.save({"state": net.state_dict(), "train_s": train_s, "hp": hp}, ckpt)
    net.eval()
    if a.train_only:
        return
    import scenes_export
    scenes_export.export_all(net, hp, (Xtr, Ytr), (Xva, Yva), (Xte, Yte), out_dir, log, train_s)
    logf.close()


if __name__ == "__main__":
    main()
