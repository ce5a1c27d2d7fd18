"""Slimmable building blocks (PyTorch): first-k Conv2d / ConvTranspose2d / Linear with
switchable BatchNorm.

Every slimmable layer belongs to one segment (an encoder stage or a task decoder) and reads the
segment's current width multiplier. Output channels follow docs/manifest.md's channel rule
(`active`); input channels are whatever the producer delivered (x.shape[1]), so slimming is
first-k across the encoder/decoder boundary too.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# The channel rule written into the manifest; `active` is the one implementation used in training.
CHANNEL_RULE = {"kind": "ceil", "divisor": 1, "min": 1}
WIDTHS = [0.25, 0.5, 0.75, 1.0]


def active(m, c, rule=CHANNEL_RULE):
    div, mn = int(rule["divisor"]), int(rule["min"])
    return min(c, max(mn, div * math.ceil(float(m) * c / div - 1e-6)))


class Slim(nn.Module):
    """Mixin state: segment name, its widths, the current multiplier and width index."""

    def _init_slim(self, segment, widths):
        self.segment = segment
        self.widths = list(widths)
        self.m = 1.0
        self.widx = len(self.widths) - 1

    def set_width(self, m):
        self.m = float(m)
        self.widx = self.widths.index(self.m)


class SlimConv2d(Slim):
    """Conv2d using W[:k_out, :k_in]; `depthwise` keeps out = in; optional switchable BN (one
    BatchNorm2d per width, each sized to that width's active channels)."""

    def __init__(self, segment, widths, cin, cout, k, stride=1, padding=0, depthwise=False,
                 bn=True, fixed_out=False):
        super().__init__()
        self._init_slim(segment, widths)
        self.cin, self.cout, self.k = cin, cout, k
        self.stride, self.padding = stride, padding
        self.depthwise = depthwise
        self.fixed_out = fixed_out
        if depthwise:
            assert cin == cout
            self.weight = nn.Parameter(torch.empty(cout, 1, k, k))
        else:
            self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        if bn:
            self.bias = None
            self.bns = nn.ModuleList(nn.BatchNorm2d(self.k_out_at(w)) for w in self.widths)
        else:
            self.bias = nn.Parameter(torch.zeros(cout))
            self.bns = None

    def k_out_at(self, m):
        if self.depthwise:
            return active(m, self.cout)  # equals the producer's active count at the same width
        return self.cout if self.fixed_out else active(m, self.cout)

    def forward(self, x):
        kin = x.shape[1]
        if self.depthwise:
            kout, groups = kin, kin
            w = self.weight if kin == self.cout else self.weight[:kin]
        else:
            kout, groups = self.k_out_at(self.m), 1
            if kout == self.cout and kin == self.cin:
                w = self.weight
            else:
                w = self.weight[:kout, :kin]
        b = None
        if self.bias is not None:
            b = self.bias if kout == self.cout else self.bias[:kout]
        y = F.conv2d(x, w, b, self.stride, self.padding, 1, groups)
        if self.bns is not None:
            bn = self.bns[self.widx]
            assert bn.num_features == kout, (bn.num_features, kout)
            y = bn(y)
        return y


class SlimConvTranspose2d(Slim):
    """ConvTranspose2d using the first k_in input and k_out output channels of its weight
    (PyTorch/ONNX layout [C_in, C_out, kH, kW]: W[:k_in, :k_out]); no BatchNorm (a bias).
    `fixed_out` keeps every output channel at every width."""

    def __init__(self, segment, widths, cin, cout, k, stride=1, padding=0, fixed_out=False):
        super().__init__()
        self._init_slim(segment, widths)
        self.cin, self.cout, self.k = cin, cout, k
        self.stride, self.padding, self.fixed_out = stride, padding, fixed_out
        self.weight = nn.Parameter(torch.empty(cin, cout, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        kin = x.shape[1]
        kout = self.cout if self.fixed_out else active(self.m, self.cout)
        w, b = self.weight, self.bias
        if kout != self.cout or kin != self.cin:
            w, b = w[:kin, :kout], b[:kout]
        return F.conv_transpose2d(x, w, b, self.stride, self.padding)


class SlimLinear(Slim):
    """Linear using W[:k_out, :k_in] (k_in from the input, e.g. c*H*W after a Flatten)."""

    def __init__(self, segment, widths, cin, cout, fixed_out=False):
        super().__init__()
        self._init_slim(segment, widths)
        self.cin, self.cout, self.fixed_out = cin, cout, fixed_out
        lin = nn.Linear(cin, cout)
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.bias = nn.Parameter(lin.bias.detach().clone())

    def forward(self, x):
        kin = x.shape[1]
        kout = self.cout if self.fixed_out else active(self.m, self.cout)
        if kout == self.cout and kin == self.cin:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight[:kout, :kin], self.bias[:kout])


class ConvAct(nn.Module):
    """SlimConv2d followed by an activation module (ReLU -> Relu, ReLU6 -> Clip in ONNX)."""

    def __init__(self, segment, widths, cin, cout, k, stride=1, padding=None, depthwise=False,
                 bn=True, act="relu", fixed_out=False):
        super().__init__()
        if padding is None:
            padding = k // 2
        self.conv = SlimConv2d(segment, widths, cin, cout, k, stride, padding, depthwise, bn,
                               fixed_out)
        self.act = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), None: nn.Identity()}[act]

    def forward(self, x):
        return self.act(self.conv(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 project, residual Add."""

    def __init__(self, segment, widths, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.expand = ConvAct(segment, widths, cin, hid, 1, act="relu6") if expand != 1 else None
        self.dw = ConvAct(segment, widths, hid, hid, 3, stride, depthwise=True, act="relu6")
        self.project = ConvAct(segment, widths, hid, cout, 1, act=None)

    def forward(self, x):
        y = x
        if self.expand is not None:
            y = self.expand(y)
        y = self.project(self.dw(y))
        return x + y if self.use_res else y


class MultiTaskNet(nn.Module):
    """Shared encoder + one decoder per task. forward returns (task outputs in task order,
    encoder features). Decoders read only the encoder output."""

    def __init__(self, encoder, decoders, tasks, widths):
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict(decoders)
        self.tasks = list(tasks)
        self.segments = ["encoder"] + self.tasks
        self.widths = {s: list(widths[s]) for s in self.segments}

    def set_config(self, cfg):
        for mod in self.modules():
            if isinstance(mod, Slim):
                mod.set_width(cfg[mod.segment])

        self.exporting = False

    def encode(self, x):
        """The encoder alone (BatchNorm recalibration runs only this)."""
        return self.encoder(x)

    def forward(self, x):
        f = self.encoder(x)
        outs = [self.decoders[t](f) for t in self.tasks]
        if self.exporting:
            return tuple(outs)
        return outs, f


def set_config(net, cfg):
    """Set every slimmable layer of `net` to its segment's multiplier in `cfg` ({segment: m})."""
    for mod in net.modules():
        if isinstance(mod, Slim):
            mod.set_width(cfg[mod.segment])
