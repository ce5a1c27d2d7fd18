//! The portable variant: coordinates and taps computed once per output row and column (not
//! per channel), nearest as a table copy of whole pixels, bilinear over the contiguous
//! channels of the four source pixels; the reference's bytes.

use super::reference::{coordinate, linear_taps, nearest_index};
use crate::kernels::common::{TABLE_MIN, is_identity, map_run, rescale_table};
use crate::kernels::{OutputStage, Rescale, ResizeGeometry, Shape};
use crate::ops::resize::WEIGHT_BITS;
use crate::quant::multiply_by_quantized_multiplier;

/// Spatial resize; same contract and bytes as [`crate::kernels::reference::resize`].
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
    if c == 0 || in_shape.c < c || (!g.linear && out_shape.len() < TABLE_MIN) {
        return super::reference::resize(g, input, in_shape, r, stage, output, out_shape);
    }
    let pixel = |y: usize, x: usize| &input[(y * in_shape.w + x) * in_shape.c..][..c];
    let row_len = out_shape.w * c;
    if !g.linear {
        let table = rescale_table(r, &stage);
        let identity = is_identity(&table);
        for (oy, out_row) in output.chunks_exact_mut(row_len).enumerate() {
            let cy = coordinate(oy, g.coord, g.scale[0], in_shape.h, out_shape.h);
            let y = nearest_index(cy, g.nearest, in_shape.h);
            for (ox, dst) in out_row.chunks_exact_mut(c).enumerate() {
                let cx = coordinate(ox, g.coord, g.scale[1], in_shape.w, out_shape.w);
                let x = nearest_index(cx, g.nearest, in_shape.w);
                map_run(dst, pixel(y, x), &table, identity);
            }
        }
        return;
    }
    let one = 1i32 << WEIGHT_BITS;
    // sum_k w_k * (x_k - zp) with weights summing to one^2: sum_k w_k * x_k - zp * one^2.
    let zp_term = r.zero_point * one * one;
    for (oy, out_row) in output.chunks_exact_mut(row_len).enumerate() {
        let cy = coordinate(oy, g.coord, g.scale[0], in_shape.h, out_shape.h);
        let (y0, y1, wy) = linear_taps(cy, in_shape.h);
        for (ox, dst) in out_row.chunks_exact_mut(c).enumerate() {
            let cx = coordinate(ox, g.coord, g.scale[1], in_shape.w, out_shape.w);
            let (x0, x1, wx) = linear_taps(cx, in_shape.w);
            // The four corner weights; each product below is at most 255 * 2^20 in magnitude.
            let w00 = (one - wx) * (one - wy);
            let w01 = wx * (one - wy);
            let w10 = (one - wx) * wy;
            let w11 = wx * wy;
            let (a, b, p, q) = (pixel(y0, x0), pixel(y0, x1), pixel(y1, x0), pixel(y1, x1));
            for (j, o) in dst.iter_mut().enumerate() {
                let acc =
                    a[j] as i32 * w00 + b[j] as i32 * w01 + p[j] as i32 * w10 + q[j] as i32 * w11
                        - zp_term;
                *o = stage.finish(multiply_by_quantized_multiplier(acc, r.multiplier, r.shift));
            }
        }
    }
}
