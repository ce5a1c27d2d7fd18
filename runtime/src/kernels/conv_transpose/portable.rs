//! The portable variant: per output position, the taps that reach the input are found once
//! (per row and per column), then every block of four output channels is one dot product per
//! such tap over the group's input channels (`common::dot4`), as the portable convolution; the
//! reference's bytes (wrapping i32 sums in any order are the same sum).

use crate::kernels::common::{BLOCK, dot4};
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// Largest kernel side whose taps are listed on the stack; larger kernels run the reference.
const MAX_SIDE: usize = 16;

/// The taps `(k, i)` of one axis that output coordinate `o` reads: `o + pad - k * dilation =
/// i * stride` with `i < n`. Returns how many were written to `out`.
#[inline]
fn axis_taps(
    o: usize,
    pad: usize,
    dil: usize,
    stride: usize,
    k_n: usize,
    n: usize,
    out: &mut [(usize, usize); MAX_SIDE],
) -> usize {
    let mut count = 0;
    for k in 0..k_n {
        let Some(t) = (o + pad).checked_sub(k * dil) else {
            break;
        };
        if t % stride == 0 && t / stride < n {
            out[count] = (k, t / stride);
            count += 1;
        }
    }
    count
}

/// Transposed convolution; same contract and bytes as
/// [`crate::kernels::reference::conv_transpose`].
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
    if kh > MAX_SIDE || kw > MAX_SIDE || g.groups == 0 || g.stride.contains(&0) {
        return super::reference::conv_transpose(
            g, input, in_shape, input_zp, weights, wshape, quant, stage, output, out_shape,
        );
    }
    let groups = g.groups;
    let (cin_g, cout_g) = (in_shape.c / groups, out_shape.c / groups);
    let zp = input_zp as i16;
    let w_row = kh * kw * i_full;
    let mut ys = [(0usize, 0usize); MAX_SIDE];
    let mut xs = [(0usize, 0usize); MAX_SIDE];
    for oy in 0..out_shape.h {
        let ny = axis_taps(
            oy,
            g.pad[0],
            g.dilation[0],
            g.stride[0],
            kh,
            in_shape.h,
            &mut ys,
        );
        for ox in 0..out_shape.w {
            let nx = axis_taps(
                ox,
                g.pad[1],
                g.dilation[1],
                g.stride[1],
                kw,
                in_shape.w,
                &mut xs,
            );
            let out_base = (oy * out_shape.w + ox) * out_shape.c;
            for grp in 0..groups {
                let last = grp * cout_g + cout_g.max(1) - 1;
                let mut oc = 0;
                while oc < cout_g {
                    let o0 = grp * cout_g + oc;
                    // A partial last block repeats the last channel (computed, not stored).
                    let rows: [usize; BLOCK] = core::array::from_fn(|j| (o0 + j).min(last) * w_row);
                    let mut acc = [0i32; BLOCK];
                    for &(ky, iy) in &ys[..ny] {
                        for &(kx, ix) in &xs[..nx] {
                            let x = &input[(iy * in_shape.w + ix) * in_shape.c + grp * cin_g..]
                                [..cin_g];
                            let w0 = (ky * kw + kx) * i_full;
                            dot4(
                                &mut acc,
                                x,
                                zp,
                                core::array::from_fn(|j| &weights[rows[j] + w0..]),
                            );
                        }
                    }
                    let n = BLOCK.min(cout_g - oc);
                    for (j, &a) in acc.iter().enumerate().take(n) {
                        let (bias, m, s) = quant.get(o0 + j);
                        output[out_base + o0 + j] = stage.finish(multiply_by_quantized_multiplier(
                            a.wrapping_add(bias),
                            m,
                            s,
                        ));
                    }
                    oc += BLOCK;
                }
            }
        }
    }
}
