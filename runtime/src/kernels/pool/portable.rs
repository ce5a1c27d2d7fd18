//! The portable variant: safe Rust for every target, the reference's bytes (see
//! `kernels/common.rs` for what it changes against the reference).

use crate::kernels::common::taps;
use crate::kernels::{OutputStage, PoolGeometry, Rescale, Shape};
use crate::quant::{multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_div};

/// Channels pooled together per output position (accumulators on the stack).
const C_BLOCK: usize = 64;

/// Input offsets (of channel 0) of the in-bounds positions of output position `(oy, ox)`'s
/// window, and how many there are: the window clipped once to the input, exactly the
/// positions the reference visits.
#[inline]
fn window(
    geo: &PoolGeometry,
    in_shape: Shape,
    oy: usize,
    ox: usize,
) -> (impl Iterator<Item = usize> + Clone, usize) {
    let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
    let ky_r = taps(y0, geo.pad[0], 1, geo.kernel[0], in_shape.h);
    let kx_r = taps(x0, geo.pad[1], 1, geo.kernel[1], in_shape.w);
    let count = ky_r.len() * kx_r.len();
    let (pt, pl) = (geo.pad[0], geo.pad[1]);
    let it = ky_r.flat_map(move |ky| {
        let row = (y0 + ky - pt) * in_shape.w;
        kx_r.clone()
            .map(move |kx| (row + x0 + kx - pl) * in_shape.c)
    });
    (it, count)
}

/// Calls `f(oy, ox, c0, n, out)` for every output position and block of `n <= C_BLOCK`
/// channels from `c0`, `out` being the block's first output offset.
#[inline]
fn for_each_block(out_shape: Shape, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let base = (oy * out_shape.w + ox) * out_shape.c;
            let mut c0 = 0;
            while c0 < out_shape.c {
                let n = C_BLOCK.min(out_shape.c - c0);
                f(oy, ox, c0, n, base + c0);
                c0 += n;
            }
        }
    }
}

/// Max pooling; same contract and bytes as [`crate::kernels::reference::max_pool`].
pub fn max_pool(
    geo: &PoolGeometry,
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let finish = |v: i32| {
        stage.finish(multiply_by_quantized_multiplier(
            v,
            rescale.multiplier,
            rescale.shift,
        ))
    };
    // The output depends only on the window's int8 maximum: from 256 outputs on, the 256
    // possible results are computed once (the reference's own arithmetic) and looked up.
    let table: Option<[i8; 256]> = (out_shape.len() >= 256)
        .then(|| core::array::from_fn(|b| finish(b as u8 as i8 as i32 - rescale.zero_point)));
    let empty = finish(0);
    for_each_block(out_shape, |oy, ox, c0, n, out| {
        let (win, count) = window(geo, in_shape, oy, ox);
        let mut m = [i8::MIN; C_BLOCK];
        let m = &mut m[..n];
        for i in win {
            for (m, &x) in m.iter_mut().zip(&input[i + c0..][..n]) {
                *m = (*m).max(x);
            }
        }
        let dst = &mut output[out..out + n];
        match (count, &table) {
            (0, _) => dst.fill(empty),
            (_, Some(t)) => {
                for (o, &m) in dst.iter_mut().zip(m.iter()) {
                    *o = t[m as u8 as usize];
                }
            }
            (_, None) => {
                for (o, &m) in dst.iter_mut().zip(m.iter()) {
                    *o = finish(m as i32 - rescale.zero_point);
                }
            }
        }
    });
}

/// Average pooling; same contract and bytes as [`crate::kernels::reference::avg_pool`].
pub fn avg_pool(
    geo: &PoolGeometry,
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let full = geo.kernel[0]
        .saturating_mul(geo.kernel[1])
        .min(u32::MAX as usize) as u32;
    for_each_block(out_shape, |oy, ox, c0, n, out| {
        let (win, count) = window(geo, in_shape, oy, ox);
        let mut sum = [0i32; C_BLOCK];
        let sum = &mut sum[..n];
        for i in win {
            for (s, &x) in sum.iter_mut().zip(&input[i + c0..][..n]) {
                *s = s.wrapping_add(x as i32 - rescale.zero_point);
            }
        }
        let count = if geo.count_include_pad {
            full
        } else {
            count.min(u32::MAX as usize) as u32
        };
        for (o, &s) in output[out..out + n].iter_mut().zip(sum.iter()) {
            *o = stage.finish(multiply_by_quantized_multiplier_div(
                s,
                rescale.multiplier,
                rescale.shift,
                count,
            ));
        }
    });
}

/// Global average pooling; same contract and bytes as
/// [`crate::kernels::reference::global_avg_pool`]: positions outer, a block of channels inner.
pub fn global_avg_pool(
    input: &[i8],
    in_shape: Shape,
    rescale: Rescale,
    stage: OutputStage,
    output: &mut [i8],
) {
    let positions = in_shape.h * in_shape.w;
    let c_n = output.len().min(in_shape.c);
    let mut c0 = 0;
    while c0 < c_n {
        let n = C_BLOCK.min(c_n - c0);
        let mut sum = [0i32; C_BLOCK];
        let sum = &mut sum[..n];
        for p in 0..positions {
            for (s, &x) in sum.iter_mut().zip(&input[p * in_shape.c + c0..][..n]) {
                *s = s.wrapping_add(x as i32 - rescale.zero_point);
            }
        }
        for (o, &s) in output[c0..c0 + n].iter_mut().zip(sum.iter()) {
            *o = stage.finish(multiply_by_quantized_multiplier(
                s,
                rescale.multiplier,
                rescale.shift,
            ));
        }
        c0 += n;
    }
}
