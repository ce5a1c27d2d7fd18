//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// Transposed convolution over NHWC int8: output `(oy, ox, o)` sums, over the taps `(ky, kx)`
/// and the active input channels `i` of its group, `(x[iy, ix, g * cin_g + i] - input_zp) *
/// w[o, ky, kx, i]` where `oy + pad_top - ky * dilation = iy * stride` (and likewise across)
/// with `iy` inside the input; then channel `o`'s bias, requantization and the output stage.
/// `wshape = [O, KH, KW, I_full / groups]`: the weights of the full width, read first-k.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose(
    g: &ConvGeometry,
    input: &[i8],
    in_shape: Shape,
    input_zp: i32,
    weights: &[i8],
    wshape: [usize; 4],
    quant: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let [_, kh, kw, i_full] = wshape;
    let (cin_g, cout_g) = (in_shape.c / g.groups, out_shape.c / g.groups);
    // The input index a tap reads along one axis, if any.
    let src = |o: usize, k: usize, axis: usize, n: usize| -> Option<usize> {
        let t = (o + g.pad[axis]).checked_sub(k * g.dilation[axis])?;
        (t % g.stride[axis] == 0 && t / g.stride[axis] < n).then_some(t / g.stride[axis])
    };
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            for o in 0..out_shape.c {
                let grp = o / cout_g;
                let (bias, m, s) = quant.get(o);
                let mut acc = bias;
                for ky in 0..kh {
                    let Some(iy) = src(oy, ky, 0, in_shape.h) else {
                        continue;
                    };
                    for kx in 0..kw {
                        let Some(ix) = src(ox, kx, 1, in_shape.w) else {
                            continue;
                        };
                        let xi = (iy * in_shape.w + ix) * in_shape.c + grp * cin_g;
                        let wi = ((o * kh + ky) * kw + kx) * i_full;
                        for i in 0..cin_g {
                            let v = input[xi + i] as i32 - input_zp;
                            acc = acc.wrapping_add(v * weights[wi + i] as i32);
                        }
                    }
                }
                output[(oy * out_shape.w + ox) * out_shape.c + o] =
                    stage.finish(multiply_by_quantized_multiplier(acc, m, s));
            }
        }
    }
}
