//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// 2-D convolution, NHWC, with groups, stride, padding and dilation.
///
/// `weights` is the stored `[o_full, kh, kw, i_full]` tensor (`i_full` = input channels per
/// group at full width); output channel `o` of group `g` is row `o`, and reads input channels
/// `g * cin_g .. (g + 1) * cin_g` with `cin_g = input.c / groups` as weight columns
/// `0 .. cin_g`. Padding contributes nothing (the input zero point, i.e. real zero).
/// Per output channel: `acc = bias + sum((x - in_zp) * w)`, then requantize, add the output
/// zero point and clamp.
///
/// The padded coordinates `oy * stride + ky * dilation` and the padding fit `isize` on every
/// target: `Model::parse` holds the last window's end and `in + pad` within
/// [`MAX_COORD`](crate::ops::MAX_COORD) (`ops::conv::prepare`).
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    geo: &ConvGeometry,
    input: &[i8],
    in_shape: Shape,
    in_zp: i32,
    weights: &[i8],
    w_shape: [usize; 4],
    chan: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let [_, kh, kw, i_full] = w_shape;
    let groups = geo.groups.max(1);
    let cin_g = in_shape.c / groups;
    let cout_g = out_shape.c / groups;
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let out_base = (oy * out_shape.w + ox) * out_shape.c;
            for g in 0..groups {
                for oc in 0..cout_g {
                    let o = g * cout_g + oc;
                    let mut acc: i32 = 0;
                    for ky in 0..kh {
                        let iy = (oy * geo.stride[0] + ky * geo.dilation[0]) as isize
                            - geo.pad[0] as isize;
                        if iy < 0 || iy >= in_shape.h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * geo.stride[1] + kx * geo.dilation[1]) as isize
                                - geo.pad[1] as isize;
                            if ix < 0 || ix >= in_shape.w as isize {
                                continue;
                            }
                            let in_base =
                                (iy as usize * in_shape.w + ix as usize) * in_shape.c + g * cin_g;
                            let w_base = ((o * kh + ky) * kw + kx) * i_full;
                            for ic in 0..cin_g {
                                let x = input[in_base + ic] as i32 - in_zp;
                                let w = weights[w_base + ic] as i32;
                                acc = acc.wrapping_add(x * w);
                            }
                        }
                    }
                    let (bias, mult, shift) = chan.get(o);
                    let v = multiply_by_quantized_multiplier(acc.wrapping_add(bias), mult, shift);
                    output[out_base + o] = stage.finish(v);
                }
            }
        }
    }
}
