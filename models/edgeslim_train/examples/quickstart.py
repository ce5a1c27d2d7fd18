"""Make your own model slimmable: a complete small example (models/edgeslim_train/README.md).

A two-stage encoder and two task decoders on synthetic 1x16x16 images of a bar:
`orient` (is the bar horizontal or vertical: 2 classes) and `mask` (per-pixel bar mask
logits, a dense output). Every segment runs at widths 0.25, 0.5, 0.75, 1.0.

    python examples/quickstart.py [out_dir] [--steps N]
"""

import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeslim_train import recipe, slicer
from edgeslim_train.export import export
from edgeslim_train.slim import ConvAct, SlimConv2d, SlimConvTranspose2d, SlimLinear, set_config

W = [0.25, 0.5, 0.75, 1.0]


# 1. Build the network from slimmable layers. Each layer names its segment; a segment's
#    layers live under an attribute of the same name (the ONNX exporter then scopes their
#    nodes "/<segment>/...", which is how the manifest assigns nodes to segments).
class Stage(nn.Module):
    def __init__(self, seg, cin, cout):
        super().__init__()
        self.conv = ConvAct(seg, W, cin, cout, 3, stride=2)  # conv + switchable BN + ReLU

    def forward(self, x):
        return self.conv(x)


class Orient(nn.Module):  # classification decoder
    def __init__(self):
        super().__init__()
        self.conv = ConvAct("orient", W, 16, 16, 3, bn=False)  # decoders: no BatchNorm
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.head = SlimLinear("orient", W, 16, 2, fixed_out=True)  # outputs never slim

    def forward(self, f):
        return self.head(self.flat(self.pool(self.conv(f))))


class Mask(nn.Module):  # dense decoder: 4x4 -> 16x16
    def __init__(self):
        super().__init__()
        self.up1 = SlimConvTranspose2d("mask", W, 16, 8, 2, 2)
        self.up2 = SlimConvTranspose2d("mask", W, 8, 8, 2, 2)
        self.head = SlimConv2d("mask", W, 8, 2, 1, bn=False, fixed_out=True)

    def forward(self, f):
        return self.head(F.relu(self.up2(F.relu(self.up1(f)))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.s1 = Stage("s1", 1, 8)    # 1x16x16 -> 8x8x8
        self.s2 = Stage("s2", 8, 16)   # -> 16x4x4
        self.orient = Orient()
        self.mask = Mask()
        # 2. The protocol edgeslim_train's recipe and export read:
        self.tasks = ["orient", "mask"]
        self.segments = ["s1", "s2", "orient", "mask"]  # encoder stages first
        self.roles = {"s1": "encoder", "s2": "encoder", "orient": "decoder", "mask": "decoder"}
        self.widths = {s: W for s in self.segments}
        self.exporting = False

    def set_config(self, cfg):  # {segment: width}
        set_config(self, cfg)

    def encode(self, x):  # the encoder alone (BN recalibration)
        return self.s2(self.s1(x))

    def forward(self, x):
        f = self.encode(x)
        outs = [self.orient(f), self.mask(f)]
        # export wants the task outputs only; training also the encoder features
        return tuple(outs) if self.exporting else (outs, f)


def bars(n, seed):
    """Synthetic data: one bright horizontal or vertical bar per 16x16 image, plus noise."""
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 1, 16, 16).astype(np.float32) * 0.2
    orient = rng.randint(0, 2, n)
    mask = np.zeros((n, 16, 16), np.int64)
    for i in range(n):
        a = rng.randint(0, 10)
        b = a + rng.randint(5, 16 - a)  # 6..16 pixels long, 3 thick
        c = rng.randint(0, 14)
        if orient[i]:
            mask[i, a:b + 1, c:c + 3] = 1
        else:
            mask[i, c:c + 3, a:b + 1] = 1
    x[:, 0][mask == 1] = 1.0
    return x, orient.astype(np.int64), mask


def main(out_dir="quickstart-out", steps=400):
    torch.manual_seed(0)
    x, y_orient, y_mask = bars(512, 0)
    X, Yo, Ym = torch.from_numpy(x), torch.from_numpy(y_orient), torch.from_numpy(y_mask)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 5e-3)
    rng = random.Random(0)

    # 3. Losses: ground truth for the widest; distillation from the widest's outputs.
    def distill(outs, teachers):
        o, m = outs
        to, tm = teachers
        return (F.kl_div(F.log_softmax(o, 1), to, reduction="batchmean")
                + F.kl_div(F.log_softmax(m, 1), tm, reduction="batchmean") / (16 * 16))

    for step in range(steps):
        idx = torch.randint(0, len(X), (32,))

        def gt(outs):
            return F.cross_entropy(outs[0], Yo[idx]) + F.cross_entropy(outs[1], Ym[idx])

        opt.zero_grad()
        # 4. One sandwich-rule step: widest (gt) + narrowest + 2 random configs (distilled,
        #    plus the configuration-invariant loss on the encoder features).
        r = recipe.sandwich_step(net, X[idx], gt, distill, n_random=2, rng=rng)
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: {r}")

    # 5. BatchNorm statistics per width, recomputed over the training data.
    recipe.recalibrate_bn(net, x)

    # 6. Export: model.onnx (BN folded; narrower widths in the manifest's per_width),
    #    the manifest in its metadata, and the int8 QDQ copy calibrated on training samples.
    os.makedirs(out_dir, exist_ok=True)
    path, qpath = os.path.join(out_dir, "model.onnx"), os.path.join(out_dir, "model_qdq.onnx")
    model, man = export(net, (1, 16, 16), path, qpath, calib=x[:64],
                        metrics={"orient": "accuracy", "mask": "miou"},
                        fixed_channels=["mask.head"], roles=net.roles)

    # 7. Any width config: slice model.onnx by the manifest and compare with PyTorch.
    xt, ot, mt = bars(256, 1)
    for cfg in (recipe.narrowest(net), {"s1": 0.25, "s2": 1.0, "orient": 0.5, "mask": 0.75},
                recipe.widest(net)):
        ref = recipe.predict(net, xt, cfg)
        sm, _ = slicer.slice_model(model, cfg)
        got = slicer.run_ort(sm, xt)
        err = max(float(np.abs(got[t] - ref[t]).max()) for t in net.tasks)
        acc = float((got["orient"].argmax(1) == ot).mean())
        pix = float((got["mask"].argmax(1) == mt).mean())
        print(f"{cfg}: orient acc {acc:.3f}, mask pixel acc {pix:.3f}, ORT vs torch {err:.1e}")
    return net, model, man


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else 400
    if "--steps" in sys.argv:
        args = [a for a in args if a != str(n)]
    main(*(args[:1] or ["quickstart-out"]), steps=n)
