"""A tiny two-stage, two-decoder slimmable net used by the tests: every construct of the dense
models (switchable BN in two encoder stages, a fixed-width skip concatenated first,
ConvTranspose, a fixed-width head, Sigmoid, bilinear Resize) at 1x16x16."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeslim_train.slim import ConvAct, SlimConv2d, SlimConvTranspose2d, set_config

W = [0.25, 0.5, 0.75, 1.0]


class Stage(nn.Module):
    def __init__(self, seg, cin, cout, skip=0):
        super().__init__()
        self.down = ConvAct(seg, W, cin, cout, 3, stride=2)
        self.conv = ConvAct(seg, W, cout, cout, 3)
        self.skip = ConvAct(seg, W, cout, skip, 1, fixed_out=True) if skip else None

    def forward(self, x):
        y = self.conv(self.down(x))
        if self.skip is None:
            return y
        return y, self.skip(y)  # called here so the exporter scopes it under the stage


class Dec(nn.Module):
    def __init__(self, seg, n_out, sigmoid):
        super().__init__()
        self.up = SlimConvTranspose2d(seg, W, 12, 8, 2, 2)
        self.fuse = ConvAct(seg, W, 4 + 8, 8, 3, bn=False)
        self.head = SlimConv2d(seg, W, 8, n_out, 1, bn=False, fixed_out=True)
        self.sigmoid = sigmoid
        self.resize = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, f, skip):
        y = self.fuse(torch.cat([skip, F.relu(self.up(f))], 1))
        y = self.head(y)
        return self.resize(torch.sigmoid(y) if self.sigmoid else y)


class TinyDense(nn.Module):
    """1x16x16 -> s1 (8x8x8, skip 4x8x8) -> s2 (12x4x4) -> decoders `a` (3 classes) and `b`
    (1 channel, Sigmoid), each back to 16x16."""

    def __init__(self):
        super().__init__()
        self.s1 = Stage("s1", 1, 8, skip=4)
        self.s2 = Stage("s2", 8, 12)
        self.a = Dec("a", 3, False)
        self.b = Dec("b", 1, True)
        self.tasks = ["a", "b"]
        self.segments = ["s1", "s2", "a", "b"]
        self.roles = {"s1": "encoder", "s2": "encoder", "a": "decoder", "b": "decoder"}
        self.widths = {s: list(W) for s in self.segments}
        self.exporting = False

    def set_config(self, cfg):
        set_config(self, cfg)

    def encode(self, x):
        f1, skip = self.s1(x)
        return self.s2(f1), skip

    def forward(self, x):
        f, skip = self.encode(x)
        outs = [self.a(f, skip), self.b(f, skip)]
        return tuple(outs) if self.exporting else (outs, f)


def randomize_bn(net, seed=0):
    """Non-trivial BatchNorm parameters and statistics (so folding is really exercised)."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = torch.randn(n, generator=g) * 0.3
            m.running_mean = torch.randn(n, generator=g) * 0.2
            m.running_var = 0.5 + torch.rand(n, generator=g)
