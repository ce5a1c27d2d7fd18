//! ConvTranspose (ONNX's transposed convolution, the upsampling layer of dense decoders) with
//! groups, stride, dilation and padding, and per-output-channel requantization. Each output
//! gathers the inputs that ONNX scatters to it: output `oy` receives input `iy` through tap
//! `ky` when `oy = iy * stride + ky * dilation - pad`. Weights are stored as a convolution's,
//! `[O, KH, KW, I / groups]` (the compiler transposes ONNX's `[I, O / groups, KH, KW]`), so
//! first-k slimming reads the first rows and columns as for Conv2d. Kernels:
//! `kernels/conv_transpose/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, coord, no_words};
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

/// The geometry of a record (`pad` is ONNX's leading padding, which crops the output).
pub fn geometry(op: &OpInfo) -> ConvGeometry {
    let a = &op.attrs;
    ConvGeometry {
        stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
        pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
        dilation: [a[attr::DIL_H] as usize, a[attr::DIL_W] as usize],
        groups: a[attr::GROUPS] as usize,
    }
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let g = geometry(p.op);
    if g.stride.contains(&0) || g.dilation.contains(&0) || g.groups == 0 {
        return Err(p.err("attrs", "stride, dilation and groups must be >= 1"));
    }
    if p.op.attrs[attr::DEPTHWISE] != 0 {
        return Err(p.err("attrs", "a transposed convolution has no depthwise flag"));
    }
    if !p.output.c.is_multiple_of(g.groups) || !p.input.c.is_multiple_of(g.groups) {
        return Err(p.err("attrs", "channels do not split into the groups"));
    }
    // ONNX's output size is `(in - 1) stride + (k - 1) dil + 1 + output_padding - pad_top -
    // pad_bottom` with `output_padding < max(stride, dil)` and `pad_bottom >= 0`, so the
    // output and its leading crop end within `(in - 1) stride + (k - 1) dil + max(stride,
    // dil)` (computed in u64, saturating: a larger bound only accepts more). The kernels form
    // `o + pad` for every output coordinate `o` and `k * dil` for every tap `k`: both are held
    // within `MAX_COORD`, so they never overflow, on 32-bit targets included.
    let [_, kh, kw, _] = p.op.wshape;
    let fits = |out: usize, n: usize, k: usize, a: usize| {
        let (s, d) = (g.stride[a] as u64, g.dilation[a] as u64);
        let end = (n as u64 - 1)
            .saturating_mul(s)
            .saturating_add((k as u64 - 1).saturating_mul(d))
            .saturating_add(s.max(d));
        coord(out, 1, g.pad[a]).is_some_and(|last| last as u64 <= end)
    };
    if coord(kh - 1, g.dilation[0], 0).is_none() || coord(kw - 1, g.dilation[1], 0).is_none() {
        return Err(p.err(
            "attrs",
            "dilated kernel past the coordinate range (2^31 - 1)",
        ));
    }
    if !fits(p.output.h, p.input.h, kh, 0) || !fits(p.output.w, p.input.w, kw, 1) {
        return Err(p.err(
            "output",
            "output and leading pad larger than the transposed convolution's geometry gives, \
             or past the coordinate range (2^31 - 1)",
        ));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let g = e.p.op.attrs[attr::GROUPS] as usize;
    let (in_ch, out_ch) = (e.en.in_ch(), e.en.out_ch());
    if in_ch % g != 0 || out_ch % g != 0 || in_ch / g > e.p.op.wshape[3] {
        return Err(e.err("in_ch", "channels do not split into the groups"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let out_ch = c.out_shape.c;
    kernels::active::conv_transpose(
        &geometry(c.op),
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
