//! Conv2d: regular, grouped, depthwise (with a channel multiplier) and pointwise convolution
//! with per-output-channel requantization. Kernels: `kernels/conv/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, check_window, coord, no_words, span};
use crate::error::Error;
use crate::format::attr;
use crate::kernels::{self, ChannelQuant, ConvGeometry};
use crate::model::OpInfo;

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: true,
    extra_words: no_words,
    prepare,
    prepare_entry,
    invoke,
};

/// The geometry of `op` with `in_ch` active input channels: a depthwise conv has as many
/// groups as active input channels.
pub fn geometry(op: &OpInfo, in_ch: usize) -> ConvGeometry {
    let a = &op.attrs;
    ConvGeometry {
        stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
        pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
        dilation: [a[attr::DIL_H] as usize, a[attr::DIL_W] as usize],
        groups: if a[attr::DEPTHWISE] == 1 {
            in_ch
        } else {
            a[attr::GROUPS] as usize
        },
    }
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let (op, a) = (p.op, &p.op.attrs);
    if a[attr::STRIDE_H] == 0
        || a[attr::STRIDE_W] == 0
        || a[attr::DIL_H] == 0
        || a[attr::DIL_W] == 0
    {
        return Err(p.err("attrs", "stride and dilation must be >= 1"));
    }
    if a[attr::GROUPS] == 0 || a[attr::DEPTHWISE] > 1 {
        return Err(p.err("attrs", "groups must be >= 1, depthwise 0 or 1"));
    }
    if a[attr::DEPTHWISE] == 1 && op.wshape[3] != 1 {
        return Err(p.err("wshape", "depthwise weights have one input column"));
    }
    let g = geometry(op, 1);
    // The dilated window: (k - 1) * dilation + 1 taps (weight dimensions are >= 1 here). The
    // reference kernel forms `oy * stride + ky * dilation` for every tap before clipping it:
    // the last window's end is held within `MAX_COORD`, so that never overflows.
    let out = [p.output.h, p.output.w];
    let mut window = [0; 2];
    for a in 0..2 {
        window[a] = span(op.wshape[1 + a], g.dilation[a])
            .filter(|&s| coord(out[a] - 1, g.stride[a], s).is_some())
            .ok_or(p.err(
                "attrs",
                "dilated window past the coordinate range (2^31 - 1)",
            ))?;
    }
    check_window(p, window, g.stride, g.pad)
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let (op, out, input) = (e.p.op, e.p.output, e.p.input);
    let (in_ch, out_ch) = (e.en.in_ch(), e.en.out_ch());
    if op.attrs[attr::DEPTHWISE] == 1 {
        let mult = out.c / input.c.max(1);
        if out.c != input.c * mult || out_ch != in_ch * mult {
            return Err(e.err(
                "out_ch",
                "depthwise output must be input x channel multiplier",
            ));
        }
    } else {
        let g = op.attrs[attr::GROUPS] as usize;
        if in_ch % g != 0 || out_ch % g != 0 || in_ch / g > op.wshape[3] {
            return Err(e.err("in_ch", "channels do not split into the groups"));
        }
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let out_ch = c.out_shape.c;
    kernels::active::conv2d(
        &geometry(c.op, c.in_shape.c),
        c.x,
        c.in_shape,
        c.en.in_zp(),
        kernels::as_i8(c.model.weights(c.op)),
        c.op.wshape,
        ChannelQuant::new(c.model.channel_bytes(&c.en, out_ch)),
        c.stage,
        out,
        c.out_shape,
    );
    Ok(())
}
