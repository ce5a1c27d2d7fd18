//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale, ResizeGeometry, Shape};
use crate::ops::resize::WEIGHT_BITS;
use crate::quant::multiply_by_quantized_multiplier;

/// The input coordinate of output index `x` along one axis as the exact fraction `(p, q)`,
/// `q > 0`, for ONNX's coordinate transformation `coord` (0 half_pixel, 1 pytorch_half_pixel,
/// 2 asymmetric, 3 align_corners) with `scale = num / den` (output over input), `n_in` input
/// and `n_out` output positions.
pub fn coordinate(
    x: usize,
    coord: u32,
    [num, den]: [u32; 2],
    n_in: usize,
    n_out: usize,
) -> (i64, i64) {
    let (x, num, den) = (x as i64, num as i64, den as i64);
    match coord {
        // (x + 1/2) / scale - 1/2
        0 => ((2 * x + 1) * den - num, 2 * num),
        1 if n_out > 1 => ((2 * x + 1) * den - num, 2 * num),
        1 => (0, 1),
        // x / scale
        2 => (x * den, num),
        // x * (n_in - 1) / (n_out - 1)
        _ if n_out > 1 => (x * (n_in as i64 - 1), n_out as i64 - 1),
        _ => (0, 1),
    }
}

/// The input index nearest-mode reads for coordinate `p / q` (`nearest`: 0 round half down,
/// 1 round half up, 2 floor, 3 ceil), clamped to the input.
pub fn nearest_index((p, q): (i64, i64), nearest: u32, n_in: usize) -> usize {
    let f = p.div_euclid(q);
    let r = p.rem_euclid(q);
    let i = match nearest {
        0 => f + (2 * r > q) as i64,
        1 => f + (2 * r >= q) as i64,
        2 => f,
        _ => f + (r > 0) as i64,
    };
    i.clamp(0, n_in as i64 - 1) as usize
}

/// The two input indices and the weight of the second (of `2^WEIGHT_BITS`) that linear mode
/// reads for coordinate `p / q`, clamped to the input first (as ONNX Runtime does).
pub fn linear_taps((p, q): (i64, i64), n_in: usize) -> (usize, usize, i32) {
    let p = p.clamp(0, (n_in as i64 - 1) * q);
    let f = p.div_euclid(q);
    let r = p - f * q;
    // round(r / q * 2^bits), ties up, exactly.
    let w = (((2 * r) << WEIGHT_BITS) + q).div_euclid(2 * q) as i32;
    let i0 = f as usize;
    (i0, (i0 + 1).min(n_in - 1), w)
}

/// Resize `input` (`in_shape`) to `out_shape`. Nearest mode requantizes the value it reads by
/// `r`; linear mode sums the four taps weighted by products of `2^WEIGHT_BITS` fixed-point
/// weights (`2^(2 WEIGHT_BITS)` in all), which `r`'s multiplier scales back.
pub fn resize(
    g: &ResizeGeometry,
    input: &[i8],
    in_shape: Shape,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let c = out_shape.c;
    let one = 1i32 << WEIGHT_BITS;
    for oy in 0..out_shape.h {
        let cy = coordinate(oy, g.coord, g.scale[0], in_shape.h, out_shape.h);
        for ox in 0..out_shape.w {
            let cx = coordinate(ox, g.coord, g.scale[1], in_shape.w, out_shape.w);
            let o = (oy * out_shape.w + ox) * c;
            let at = |y: usize, x: usize, ch: usize| {
                input[(y * in_shape.w + x) * in_shape.c + ch] as i32 - r.zero_point
            };
            if g.linear {
                let (y0, y1, wy) = linear_taps(cy, in_shape.h);
                let (x0, x1, wx) = linear_taps(cx, in_shape.w);
                for ch in 0..c {
                    let top = at(y0, x0, ch) * (one - wx) + at(y0, x1, ch) * wx;
                    let bottom = at(y1, x0, ch) * (one - wx) + at(y1, x1, ch) * wx;
                    let acc = top * (one - wy) + bottom * wy;
                    output[o + ch] =
                        stage.finish(multiply_by_quantized_multiplier(acc, r.multiplier, r.shift));
                }
            } else {
                let y = nearest_index(cy, g.nearest, in_shape.h);
                let x = nearest_index(cx, g.nearest, in_shape.w);
                for ch in 0..c {
                    output[o + ch] = stage.finish(multiply_by_quantized_multiplier(
                        at(y, x, ch),
                        r.multiplier,
                        r.shift,
                    ));
                }
            }
        }
    }
}
