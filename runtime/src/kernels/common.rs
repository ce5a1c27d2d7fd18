//! Building blocks shared by the portable kernel variants (`<op>/portable.rs`).
//!
//! What the portable variants change against the reference is only the order of work and how
//! indices are formed:
//!
//! - convolution and pooling windows are clipped to the input once per output position (one
//!   range per axis, [`taps`]), so the hot loops carry no per-tap bounds test and no padding
//!   branch;
//! - the inner loop of a convolution or fully connected layer is a dot product over two
//!   equal-length slices (input channels of one tap against one weight row, [`dot4`]), which
//!   LLVM vectorises on the host and keeps branch-free on the MCU; four output channels share
//!   each input load;
//! - depthwise convolution and pooling run over contiguous channels of one position, with a
//!   small stack block of accumulators;
//! - a requantizing copy (Concat, Pad, Resize nearest, GatherChannels, MinMax) maps each
//!   int8 value through a 256-entry table of the reference's own results ([`rescale_table`]),
//!   or copies when that table is the identity.
//!
//! The arithmetic is the reference's: every product is `(x - in_zp) * w` (formed in i16, where
//! it is exact because `Model::parse` bounds zero points to int8), accumulated in i32 with
//! wrapping adds (addition modulo 2^32 is associative and commutative, so any summation order
//! gives the reference's bits), then the same requantization and output stage.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Independent partial sums per output channel in [`dot4`]: eight on targets with SIMD
/// registers (LLVM turns each group into vector multiply-adds), one on scalar MCUs (where eight
/// would spill: a Cortex-M4 has 13 free registers).
pub(crate) const LANES: usize = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64"
)) {
    8
} else {
    1
};

/// Output channels computed together, sharing each load of the input.
pub(crate) const BLOCK: usize = 4;

/// Adds `sum((x - zp) * w_j)` to `acc[j]` for the four weight slices `w`, each at least
/// `x.len()` long.
///
/// `zp` is an int8 zero point, so `x - zp` fits i16 and each product fits i32 exactly as in
/// the reference; the sums wrap as the reference's do.
#[inline(always)]
pub(crate) fn dot4(acc: &mut [i32; BLOCK], x: &[i8], zp: i16, w: [&[i8]; BLOCK]) {
    const L: usize = LANES;
    let n = x.len();
    // Cutting every row to `n` up front lets LLVM drop the per-element bounds checks.
    let (w0, w1, w2, w3) = (&w[0][..n], &w[1][..n], &w[2][..n], &w[3][..n]);
    let mut lanes = [[0i32; L]; BLOCK];
    let body = n - n % L;
    for i in (0..body).step_by(L) {
        let xc = &x[i..i + L];
        let (c0, c1, c2, c3) = (&w0[i..i + L], &w1[i..i + L], &w2[i..i + L], &w3[i..i + L]);
        for l in 0..L {
            let xv = (xc[l] as i16 - zp) as i32;
            lanes[0][l] = lanes[0][l].wrapping_add(xv * c0[l] as i32);
            lanes[1][l] = lanes[1][l].wrapping_add(xv * c1[l] as i32);
            lanes[2][l] = lanes[2][l].wrapping_add(xv * c2[l] as i32);
            lanes[3][l] = lanes[3][l].wrapping_add(xv * c3[l] as i32);
        }
    }
    let a = acc;
    for (a, lanes) in a.iter_mut().zip(&lanes) {
        *a = lanes.iter().fold(*a, |s, &v| s.wrapping_add(v));
    }
    for i in body..n {
        let xv = (x[i] as i16 - zp) as i32;
        a[0] = a[0].wrapping_add(xv * w0[i] as i32);
        a[1] = a[1].wrapping_add(xv * w1[i] as i32);
        a[2] = a[2].wrapping_add(xv * w2[i] as i32);
        a[3] = a[3].wrapping_add(xv * w3[i] as i32);
    }
}

/// Element count below which a requantizing copy runs the reference's arithmetic instead of
/// building a [`rescale_table`] (256 requantizations): the table pays off only past it.
pub(crate) const TABLE_MIN: usize = 512;

/// The requantizing copy `x -> stage.finish((x - zero_point) * M)` of every int8 value, as a
/// table indexed by `x + 128`. Each entry is computed by the reference's own arithmetic, so a
/// lookup gives the reference's byte for that value: exact by construction.
#[inline]
pub(crate) fn rescale_table(r: Rescale, stage: &OutputStage) -> [i8; 256] {
    core::array::from_fn(|i| {
        stage.finish(multiply_by_quantized_multiplier(
            i as i32 - 128 - r.zero_point,
            r.multiplier,
            r.shift,
        ))
    })
}

/// Whether `table` (from [`rescale_table`]) leaves every value unchanged: the copy is then a
/// plain copy.
#[inline]
pub(crate) fn is_identity(table: &[i8; 256]) -> bool {
    table
        .iter()
        .enumerate()
        .all(|(i, &v)| v as i32 == i as i32 - 128)
}

/// `dst[j] = table[src[j] + 128]`, or a plain copy for an identity table.
#[inline]
pub(crate) fn map_run(dst: &mut [i8], src: &[i8], table: &[i8; 256], identity: bool) {
    if identity {
        dst.copy_from_slice(src);
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = table[(s as i32 + 128) as usize];
        }
    }
}

/// Channels whose tables [`per_channel_lookup`] holds at once: 4 KiB of stack on hosts,
/// 1 KiB on MCUs.
const TABLE_BLOCK: usize = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64"
)) {
    16
} else {
    4
};

/// A per-channel map of int8 values over an NHWC tensor of `channels` channels:
/// `output[j] = entry(j % channels, input[j])`, through one 256-entry table per channel (built
/// by calling `entry` once per value) for a block of channels at a time. Exact whenever
/// `entry` is a function of its arguments; it pays off when there are more positions than 256.
#[inline]
pub(crate) fn per_channel_lookup(
    input: &[i8],
    channels: usize,
    output: &mut [i8],
    entry: impl Fn(usize, i8) -> i8,
) {
    let mut tables = [[0i8; 256]; TABLE_BLOCK];
    let mut c0 = 0;
    while c0 < channels {
        let n = TABLE_BLOCK.min(channels - c0);
        for (j, t) in tables.iter_mut().enumerate().take(n) {
            for (i, e) in t.iter_mut().enumerate() {
                *e = entry(c0 + j, (i as i32 - 128) as i8);
            }
        }
        for (src, dst) in input
            .chunks_exact(channels)
            .zip(output.chunks_exact_mut(channels))
        {
            for ((o, &v), t) in dst[c0..c0 + n]
                .iter_mut()
                .zip(&src[c0..c0 + n])
                .zip(&tables)
            {
                *o = t[(v as i32 + 128) as usize];
            }
        }
        c0 += n;
    }
}

/// The kernel taps `k` in `0..k_n` whose input coordinate `start + k * dil - pad` lies in
/// `0..n` (`dil >= 1`): the window clipped to the input, as one range.
///
/// No overflow: a validated model keeps `start` (a window's first padded coordinate) and
/// `n + pad` within [`MAX_COORD`](crate::ops::MAX_COORD) (`ops::check_window`).
#[inline]
pub(crate) fn taps(
    start: usize,
    pad: usize,
    dil: usize,
    k_n: usize,
    n: usize,
) -> core::ops::Range<usize> {
    let dil = dil.max(1);
    // Dilation 1 (nearly every layer) needs no division: it runs once per output position.
    let up = |v: usize| if dil == 1 { v } else { v.div_ceil(dil) };
    let lo = if start >= pad { 0 } else { up(pad - start) };
    let hi = if n + pad > start {
        up(n + pad - start).min(k_n)
    } else {
        0
    };
    lo..hi.max(lo)
}

/// Output position `q`'s operand of a one-group matrix-product convolution, `k_len` int8
/// values in the weights' layout (`[kh][kw][i_full]`): the input pixel itself (`same_pixels`:
/// a pointwise layer over its own pixels; or a pointwise position inside the input), `win`
/// held at the zero point (a pointwise position in the padding), or the `kxk` window gathered
/// into `win`. `win` must hold `k_len` values at the zero point `zp` when first given (padding
/// taps and inactive columns stay at it: a clipped window refills it, and only active columns
/// are copied in). Used by the Arm variants.
#[cfg(any(edgeslim_arm_dsp, edgeslim_arm_mve))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn conv_operand<'x>(
    geo: &crate::kernels::ConvGeometry,
    ins: crate::kernels::Shape,
    outs: crate::kernels::Shape,
    w_shape: [usize; 4],
    zp: i8,
    same_pixels: bool,
    k_len: usize,
    input: &'x [i8],
    q: usize,
    win: &'x mut [i8],
) -> &'x [i8] {
    let [_, kh, kw, i_full] = w_shape;
    let cin = ins.c;
    if same_pixels {
        return &input[q * cin..][..k_len];
    }
    let (oy, ox) = (q / outs.w, q % outs.w);
    let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
    let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
    let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
    if kh == 1 && kw == 1 {
        if ky_r.is_empty() || kx_r.is_empty() {
            return &win[..k_len];
        }
        let (iy, ix) = (y0 - geo.pad[0], x0 - geo.pad[1]);
        return &input[(iy * ins.w + ix) * cin..][..k_len];
    }
    if ky_r.len() < kh || kx_r.len() < kw {
        win.fill(zp);
    }
    if !kx_r.is_empty() {
        for ky in ky_r.clone() {
            let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
            let row = &mut win[ky * kw * i_full..(ky + 1) * kw * i_full];
            if geo.dilation[1] == 1 && cin == i_full {
                let ix = x0 + kx_r.start - geo.pad[1];
                let run = kx_r.len() * cin;
                row[kx_r.start * cin..][..run]
                    .copy_from_slice(&input[(iy * ins.w + ix) * cin..][..run]);
            } else {
                for kx in kx_r.clone() {
                    let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
                    row[kx * i_full..][..cin]
                        .copy_from_slice(&input[(iy * ins.w + ix) * cin..][..cin]);
                }
            }
        }
    }
    &win[..k_len]
}

/// The first `n` elements (at most `N`) of a stack buffer, set to `v`: a kernel's scratch is
/// sized for its largest shape, and zeroing all of it on every call cost more than a slimmed
/// layer's arithmetic (a `[T; N]` initialiser always writes all `N`). Used by the variants
/// with fixed stack scratch (Arm DSP, x86).
#[cfg(any(target_arch = "x86_64", edgeslim_arm_dsp))]
#[inline(always)]
pub(crate) fn prefix<T: Copy, const N: usize>(
    buf: &mut [core::mem::MaybeUninit<T>; N],
    n: usize,
    v: T,
) -> &mut [T] {
    let n = n.min(N);
    for e in &mut buf[..n] {
        e.write(v);
    }
    // SAFETY: the first `n <= N` elements were initialised just above, and `MaybeUninit<T>`
    // has the size, alignment and layout of `T`.
    unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), n) }
}
