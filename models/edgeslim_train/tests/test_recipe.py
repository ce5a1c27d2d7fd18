"""The sandwich step and BatchNorm recalibration."""

import random

import numpy as np
import torch
import torch.nn.functional as F

from edgeslim_train import recipe
from tiny import TinyDense


def losses():
    def gt(outs):
        return F.cross_entropy(outs[0], torch.zeros(4, 16, 16, dtype=torch.long)) + \
            F.l1_loss(outs[1], torch.full((4, 1, 16, 16), 0.5))

    def distill(outs, teachers):
        a, b = outs
        ta, tb = teachers
        return F.kl_div(F.log_softmax(a, 1), ta, reduction="batchmean") + F.l1_loss(b, tb)

    def teacher(o):
        return F.softmax(o.detach(), 1) if o.shape[1] > 1 else o.detach()

    return gt, distill, teacher


def test_sandwich_step_trains_widest_narrowest_and_random():
    torch.manual_seed(0)
    net = TinyDense()
    seen = []
    orig = net.set_config
    net.set_config = lambda cfg: (seen.append(dict(cfg)), orig(cfg))
    gt, distill, teacher = losses()
    x = torch.rand(4, 1, 16, 16)
    r = recipe.sandwich_step(net, x, gt, distill, teacher=teacher, n_random=2,
                             rng=random.Random(3))
    assert seen[0] == recipe.widest(net)
    assert seen[1] == recipe.narrowest(net)
    assert len(seen) == 4
    assert all(np.isfinite(v) for v in r.values()) and r["gt"] > 0 and r["ci"] > 0
    # every parameter used at the widest width got a gradient
    missing = [n for n, p in net.named_parameters() if p.grad is None and "bns" not in n]
    assert not missing, missing
    # switchable BN: the narrowest's BN got gradients too (it ran in the narrowest config)
    assert net.s1.down.conv.bns[0].weight.grad is not None


def test_sandwich_steps_reduce_the_loss():
    torch.manual_seed(0)
    net = TinyDense()
    gt, distill, teacher = losses()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    x = torch.rand(4, 1, 16, 16)
    rng = random.Random(0)
    first = None
    for _ in range(30):
        opt.zero_grad()
        r = recipe.sandwich_step(net, x, gt, distill, teacher=teacher, rng=rng)
        opt.step()
        first = first if first is not None else r["gt"]
    assert r["gt"] < 0.5 * first


def test_ci_loss_compares_first_k_channels():
    t = torch.randn(2, 8, 3, 3)
    assert recipe.ci_loss(t[:, :3].clone(), t).item() == 0.0
    assert recipe.ci_loss(t[:, 1:4].clone(), t).item() > 0.0


def test_recalibrate_bn_sets_every_width_statistics():
    torch.manual_seed(0)
    net = TinyDense()
    X = (np.random.RandomState(0).rand(64, 1, 16, 16) * 3 + 2).astype(np.float32)
    recipe.recalibrate_bn(net, X, bs=16)
    assert not net.training
    for conv in (net.s1.down.conv, net.s2.conv.conv, net.s1.skip.conv):
        for bn in conv.bns:
            # inputs have mean ~3.5: the first stage's statistics moved away from (0, 1)
            assert int(bn.num_batches_tracked) > 0
            assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
            assert bn.momentum == 0.1
    # the first conv reads the raw input at every width: its per-width means agree on the
    # common channels (same data, same weights)
    bns = net.s1.down.conv.bns
    torch.testing.assert_close(bns[0].running_mean, bns[3].running_mean[:2], rtol=1e-4, atol=1e-4)


def _stage2_mean_error(net, X, i):
    """|running mean of s2's first BN at width i - the mean of its input in the uniform
    config i| (s1's BN in eval mode)."""
    m = net.widths["s1"][i]
    net.set_config({s: m for s in net.segments})
    net.eval()
    conv = net.s2.down.conv
    bn = conv.bns[i]
    with torch.no_grad():
        f1 = net.s1(torch.from_numpy(X))[0]
        raw = F.conv2d(f1, conv.weight[:bn.num_features, :f1.shape[1]], None, conv.stride,
                       conv.padding)
    return float((bn.running_mean - raw.mean((0, 2, 3))).abs().max())


def test_recalibrate_bn_uniform_configs_beat_latin_square():
    """Default mode: a stage's BN at width i holds (up to s1 normalizing by batch statistics
    during the pass) the statistics of the uniform config i; the Latin-square average over
    neighbour widths is much further off at the narrowest width."""
    X = np.random.RandomState(1).rand(48, 1, 16, 16).astype(np.float32)
    torch.manual_seed(0)
    net = TinyDense()
    recipe.recalibrate_bn(net, X, bs=16)
    uni = [_stage2_mean_error(net, X, i) for i in range(4)]
    torch.manual_seed(0)
    net = TinyDense()
    recipe.recalibrate_bn(net, X, bs=16, mode="latin")
    lat = _stage2_mean_error(net, X, 0)
    assert max(uni) < 5e-3, uni
    assert lat > 10 * uni[0], (lat, uni)
