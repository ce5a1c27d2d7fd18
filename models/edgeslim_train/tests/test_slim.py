"""Slimmable layers compute with the first-k slices of their full-width weights."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from edgeslim_train.slim import (SlimConv2d, SlimConvTranspose2d, SlimLinear, active,
                                 set_config)

W = [0.25, 0.5, 0.75, 1.0]


def test_channel_rule():
    # ceil(m * C), at least 1, at most C (docs/manifest.md)
    assert [active(m, 10) for m in W] == [3, 5, 8, 10]
    assert [active(m, 3) for m in W] == [1, 2, 3, 3]
    assert active(0.25, 1) == 1
    assert active(0.5, 16, {"kind": "ceil", "divisor": 8, "min": 8}) == 8
    assert active(0.75, 16, {"kind": "ceil", "divisor": 8, "min": 8}) == 16


@pytest.mark.parametrize("m", W)
def test_conv_first_k(m):
    torch.manual_seed(0)
    conv = SlimConv2d("e", W, 6, 10, 3, padding=1, bn=False)
    conv.bias.data.normal_()
    conv.set_width(m)
    x = torch.randn(2, 4, 5, 5)  # the producer delivered 4 of 6 channels
    k = active(m, 10)
    y = conv(x)
    ref = F.conv2d(x, conv.weight[:k, :4], conv.bias[:k], 1, 1)
    assert y.shape[1] == k
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_narrow_output_is_prefix_of_full_without_bn():
    torch.manual_seed(0)
    conv = SlimConv2d("e", W, 3, 8, 3, padding=1, bn=False)
    x = torch.randn(1, 3, 6, 6)
    conv.set_width(1.0)
    full = conv(x)
    for m in W:
        conv.set_width(m)
        y = conv(x)
        torch.testing.assert_close(y, full[:, :active(m, 8)])


def test_switchable_bn_one_per_width():
    conv = SlimConv2d("e", W, 3, 8, 3, padding=1)
    assert [bn.num_features for bn in conv.bns] == [2, 4, 6, 8]
    fixed = SlimConv2d("e", W, 3, 8, 1, fixed_out=True)
    assert [bn.num_features for bn in fixed.bns] == [8, 8, 8, 8]
    fixed.set_width(0.25)
    assert fixed(torch.randn(1, 3, 4, 4)).shape[1] == 8


@pytest.mark.parametrize("m", W)
def test_conv_transpose_first_k(m):
    torch.manual_seed(0)
    ct = SlimConvTranspose2d("d", W, 8, 6, 2, 2)
    ct.bias.data.normal_()
    ct.set_width(m)
    x = torch.randn(1, 5, 3, 3)
    k = active(m, 6)
    ref = F.conv_transpose2d(x, ct.weight[:5, :k], ct.bias[:k], 2)
    y = ct(x)
    assert y.shape == (1, k, 6, 6)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)


def test_linear_first_k_and_fixed_head():
    torch.manual_seed(0)
    lin = SlimLinear("d", W, 12, 8)
    head = SlimLinear("d", W, 8, 3, fixed_out=True)
    for m in W:
        lin.set_width(m)
        head.set_width(m)
        x = torch.randn(2, 7)
        h = lin(x)
        k = active(m, 8)
        torch.testing.assert_close(h, F.linear(x, lin.weight[:k, :7], lin.bias[:k]))
        assert head(h).shape == (2, 3)


def test_set_config_reaches_every_layer():
    from tiny import TinyDense

    net = TinyDense()
    for combo in itertools.islice(itertools.product(W, repeat=4), 0, 256, 37):
        cfg = dict(zip(net.segments, combo))
        set_config(net, cfg)
        for mod in net.modules():
            if hasattr(mod, "segment") and hasattr(mod, "m"):
                assert mod.m == cfg[mod.segment]
        (a, b), f = net(torch.randn(1, 1, 16, 16))
        assert a.shape == (1, 3, 16, 16) and b.shape == (1, 1, 16, 16)
        assert f.shape[1] == active(cfg["s2"], 12)
