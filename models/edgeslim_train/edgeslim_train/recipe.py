"""The training recipe of Aich et al., "Efficient Controllable Multi-Task Architectures"
(ICCV 2023), small scale: the sandwich rule with in-place distillation, the
configuration-invariant encoder-feature loss, and BatchNorm recalibration per width.

A network trained here follows one protocol (`MultiTaskNet` does; so can any nn.Module):
  - `net.segments`: segment names in manifest order (encoder stages first, then decoders);
  - `net.widths`: {segment: [multipliers, increasing, ending at 1.0]};
  - `net.set_config(cfg)` sets every slimmable layer to `cfg[segment]`;
  - `net(x)` returns `(outputs, features)`: the task outputs in task order and the encoder's
    last features (what the configuration-invariant loss compares);
  - `net.encode(x)` runs the encoder alone (BatchNorm recalibration).
"""

import random

import torch
import torch.nn.functional as F

from .slim import SlimConv2d


def widest(net):
    return {s: net.widths[s][-1] for s in net.segments}


def narrowest(net):
    return {s: net.widths[s][0] for s in net.segments}


def random_config(net, rng):
    """Each segment's width drawn independently (encoder stages too)."""
    return {s: rng.choice(net.widths[s]) for s in net.segments}


def kd_softmax(o, t):
    """In-place distillation of class logits: KL(teacher softmax || student), batch mean.
    For dense logits [N, K, H, W] KL is summed over classes and pixels, divided by N."""
    return F.kl_div(F.log_softmax(o, dim=1), t, reduction="batchmean")


def soft_teacher(o):
    return F.softmax(o.detach(), dim=1)


def ci_loss(feat, feat_teacher):
    """Configuration-invariant feature loss: MSE between a narrower encoder's features and the
    first k channels of the widest encoder's (detached) features."""
    k = feat.shape[1]
    return F.mse_loss(feat, feat_teacher[:, :k])


def sandwich_step(net, x, gt_loss, distill_loss, teacher=soft_teacher, n_random=2, lam_ci=1.0,
                  rng=None, extra_configs=()):
    """One sandwich-rule step (gradients accumulated; the caller zeroes them and steps).

    1. The widest configuration with the ground-truth loss `gt_loss(outs)`; its outputs
       (`teacher(o)` per task, detached) and encoder features are the teachers.
    2. The narrowest configuration, then `n_random` random configurations (and any
       `extra_configs`), each with `distill_loss(outs, teachers) + lam_ci * ci_loss`.
    Returns {"gt": float, "kd": mean float, "ci": mean float}."""
    rng = rng or random.Random(0)
    net.set_config(widest(net))
    outs, feat = net(x)
    gt = gt_loss(outs)
    gt.backward()
    soft = [teacher(o) for o in outs]
    feat_t = feat.detach()
    out = {"gt": gt.item(), "kd": 0.0, "ci": 0.0}
    cfgs = [narrowest(net)] + [random_config(net, rng) for _ in range(n_random)]
    cfgs += list(extra_configs)
    for cfg in cfgs:
        net.set_config(cfg)
        outs, feat = net(x)
        kd = distill_loss(outs, soft)
        ci = ci_loss(feat, feat_t)
        (kd + lam_ci * ci).backward()
        out["kd"] += kd.item() / len(cfgs)
        out["ci"] += ci.item() / len(cfgs)
    return out


def _switchable_bns(net, segment):
    return [mod for mod in net.modules()
            if isinstance(mod, SlimConv2d) and mod.bns is not None and mod.segment == segment]


@torch.no_grad()
def recalibrate_bn(net, X, bs=256, mode="uniform"):
    """Exact (cumulative) BatchNorm statistics per width over `X` (a float numpy array).

    One BN-carrying segment (a single encoder): for each of its widths, the widest
    configuration elsewhere and one pass of `net.encode` over X, every BN of that width
    accumulating exactly (momentum None).

    Several BN-carrying segments (encoder stages): a stage's statistics depend on the previous
    stage's width too (its first conv sums over that many channels), but a switchable BN is
    indexed by its own segment's width only, so one set of statistics per width cannot be exact
    for every neighbour width. `mode`:
      "uniform" (default): width index i of every stage is calibrated in the uniform config
        (every stage at its i-th width): exact for the uniform configs; a mixed config uses
        statistics measured with its neighbours at its own width.
      "latin": each batch is run in as many configs as a segment has widths, in a Latin square
        (pass r gives segment j width index (r + j * (batch + 1)) mod n), the statistics
        averaged over those configs. Measured worse (examples/quickstart.py: all-narrowest
        orient accuracy 0.55 against 0.96 with the training's running statistics): an average
        over neighbour widths matches no config."""
    segs = [s for s in net.segments if _switchable_bns(net, s)]
    X = torch.from_numpy(X)
    if len(segs) == 1:
        seg = segs[0]
        for m in net.widths[seg]:
            cfg = widest(net)
            cfg[seg] = m
            net.set_config(cfg)
            bns = [mod.bns[mod.widx] for mod in _switchable_bns(net, seg)]
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None
                bn.train()
            for i in range(0, len(X), bs):
                net.encode(X[i:i + bs])
            for bn in bns:
                bn.momentum = 0.1
        net.eval()
        return
    n = len(net.widths[segs[0]])
    assert all(len(net.widths[s]) == n for s in segs), "stages with different width counts"
    every = [bn for s in segs for mod in _switchable_bns(net, s) for bn in mod.bns]
    for bn in every:
        bn.reset_running_stats()
        bn.momentum = None
    if mode == "uniform":
        for r in range(n):
            cfg = widest(net)
            for s in segs:
                cfg[s] = net.widths[s][r]
            net.set_config(cfg)
            net.eval()
            for s in segs:
                for mod in _switchable_bns(net, s):
                    mod.bns[mod.widx].train()
            for i in range(0, len(X), bs):
                net.encode(X[i:i + bs])
        for bn in every:
            bn.momentum = 0.1
        net.eval()
        return
    assert mode == "latin", mode
    for b, i in enumerate(range(0, len(X), bs)):
        for r in range(n):
            cfg = widest(net)
            for j, s in enumerate(segs):
                cfg[s] = net.widths[s][(r + j * (b + 1)) % n]
            net.set_config(cfg)
            net.eval()
            for s in segs:
                for mod in _switchable_bns(net, s):
                    mod.bns[mod.widx].train()
            net.encode(X[i:i + bs])
    for bn in every:
        bn.momentum = 0.1
    net.eval()


@torch.no_grad()
def predict(net, X, cfg, bs=256):
    """Task outputs of `net` at width config `cfg` over X (numpy), as numpy, in task order."""
    import numpy as np

    net.eval()
    net.set_config(cfg)
    outs = [[] for _ in net.tasks]
    for i in range(0, len(X), bs):
        o, _ = net(torch.from_numpy(X[i:i + bs]))
        for j, v in enumerate(o):
            outs[j].append(v.numpy())
    return {t: np.concatenate(outs[j]) for j, t in enumerate(net.tasks)}
