//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, PoolGeometry, Rescale, Shape};
use crate::quant::{multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_div};

/// Visit the in-bounds input positions of output position `(oy, ox)`; returns how many.
#[inline]
fn window(
    geo: &PoolGeometry,
    in_shape: Shape,
    oy: usize,
    ox: usize,
    mut f: impl FnMut(usize),
) -> usize {
    let mut n = 0;
    // Only window rows and columns inside the input are visited, so the work is bounded by the
    // input whatever the window size (a valid blob may hold a window of 2^32 - 1).
    let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
    let ky_end = geo.kernel[0].min((in_shape.h + geo.pad[0]).saturating_sub(y0));
    let kx_end = geo.kernel[1].min((in_shape.w + geo.pad[1]).saturating_sub(x0));
    for ky in geo.pad[0].saturating_sub(y0)..ky_end {
        let iy = (oy * geo.stride[0] + ky) as isize - geo.pad[0] as isize;
        if iy < 0 || iy >= in_shape.h as isize {
            continue;
        }
        for kx in geo.pad[1].saturating_sub(x0)..kx_end {
            let ix = (ox * geo.stride[1] + kx) as isize - geo.pad[1] as isize;
            if ix < 0 || ix >= in_shape.w as isize {
                continue;
            }
            f((iy as usize * in_shape.w + ix as usize) * in_shape.c);
            n += 1;
        }
    }
    n
}

/// Max pooling; padding is ignored (ONNX's `-inf` padding). The maximum is rescaled to the
/// output (`(max - zp_in) * M`).
pub fn max_pool(
    geo: &PoolGeometry,
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let c_n = out_shape.c;
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let base = (oy * out_shape.w + ox) * c_n;
            for c in 0..c_n {
                let mut m = i8::MIN as i32;
                let n = window(geo, in_shape, oy, ox, |i| m = m.max(input[i + c] as i32));
                let v = if n == 0 { rescale.zero_point } else { m };
                output[base + c] = stage.finish(multiply_by_quantized_multiplier(
                    v - rescale.zero_point,
                    rescale.multiplier,
                    rescale.shift,
                ));
            }
        }
    }
}

/// Average pooling: `sum(x - zp_in) * M / count` in one rounding, where `count` is the number of
/// in-bounds positions of the window, or the whole window with `count_include_pad` (padding
/// counting as real zero).
pub fn avg_pool(
    geo: &PoolGeometry,
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let c_n = out_shape.c;
    let full = geo.kernel[0]
        .saturating_mul(geo.kernel[1])
        .min(u32::MAX as usize) as u32;
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let base = (oy * out_shape.w + ox) * c_n;
            for c in 0..c_n {
                let mut sum = 0i32;
                let n = window(geo, in_shape, oy, ox, |i| {
                    sum = sum.wrapping_add(input[i + c] as i32 - rescale.zero_point)
                });
                let count = if geo.count_include_pad {
                    full
                } else {
                    n.min(u32::MAX as usize) as u32
                };
                output[base + c] = stage.finish(multiply_by_quantized_multiplier_div(
                    sum,
                    rescale.multiplier,
                    rescale.shift,
                    count,
                ));
            }
        }
    }
}

/// Global average pooling to `[1, 1, c]`: `sum(x - zp_in)` over all positions, requantized
/// once by `M = s_in / (s_out * h * w)` (the division is folded into the multiplier).
pub fn global_avg_pool(
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
) {
    let positions = in_shape.h * in_shape.w;
    for (c, o) in output.iter_mut().enumerate().take(in_shape.c) {
        let mut sum = 0i32;
        for p in 0..positions {
            sum = sum.wrapping_add(input[p * in_shape.c + c] as i32 - rescale.zero_point);
        }
        *o = stage.finish(multiply_by_quantized_multiplier(
            sum,
            rescale.multiplier,
            rescale.shift,
        ));
    }
}
