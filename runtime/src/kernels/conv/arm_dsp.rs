//! The Arm DSP variant: Cortex-M cores with the DSP extension (`thumbv7em`: M4, M7; the
//! interpreter calls it on targets with the DSP extension: `cfg(edgeslim_arm_dsp)`, set by
//! `runtime/build.rs`), the reference's bytes.
//!
//! The multiply-accumulates are dual 16-bit: `SMLAD acc, a, b` adds `a.lo * b.lo + a.hi * b.hi`
//! to a 32-bit accumulator. Four int8 values `[v0 v1 v2 v3]` of one word widen to two 16-bit
//! pairs with `SXTB16` (`(v0, v2)`) and `SXTB16 .., ROR #8` (`(v1, v3)`); the activations are
//! widened once per output position into a buffer in that same pair order, with the input zero
//! point subtracted on the way (`SXTAB16` adds `-zp` to both lanes), so the inner loop only
//! widens weights and each loaded word is reused: two output channels by two positions per
//! iteration, eight `SMLAD`s per four values of the dot product.
//!
//! Why the bytes are the reference's: every product is `(x - zp) * w` with `x - zp` in
//! `-255..=255` (exact in a 16-bit lane, as `Model::parse` bounds zero points to int8) and `w`
//! int8; `SMLAD` adds the two exact products to the accumulator modulo 2^32, and addition
//! modulo 2^32 is associative and commutative, so any summation order gives the reference's
//! wrapping sums. Padding taps and the inactive columns of a slimmed input are held at the zero
//! point, i.e. a widened 0, and add nothing. Requantization is the reference's single rounding
//! ([`dsp::requantize`], with a fast path for right shifts that is exact, argued there).
//!
//! Paths, by shape: depthwise 3x3 (one input channel per group, no dilation) with its own
//! loop; one group with a dot product of at most [`COL_LEN`] values (pointwise as a matrix
//! product, `kxk` through im2col); everything else goes to the portable variant.

use super::portable;
use crate::kernels::common::taps;
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};

/// Longest dot product (`cin` for pointwise, `kh * kw * i_full` otherwise) of the matrix
/// path: a stack buffer of `COL_LEN / 4` groups of four words (2 KiB) holds two positions.
const COL_LEN: usize = 512;
const COL_GROUPS: usize = COL_LEN / 4;

/// Channels of a depthwise block: their widened 3x3 weights live on the stack (1152 bytes).
const DW_BLOCK: usize = 64;
const DW_QUADS: usize = DW_BLOCK / 4;

/// The DSP instructions, as `asm!` (the `core::arch::arm` intrinsics are unstable), and the
/// requantization and loads shared with the fully connected variant.
pub(crate) mod dsp {
    use core::arch::asm;

    use crate::quant::multiply_by_quantized_multiplier;

    /// `acc + a.lo * b.lo + a.hi * b.hi` (signed 16-bit lanes), modulo 2^32.
    #[inline(always)]
    pub(crate) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: SMLAD reads three registers and writes one (and the sticky Q flag, which no
        // code here reads): pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 c = in(reg) acc, options(pure, nomem, nostack));
        }
        r
    }

    /// `acc + a.lo * b.lo` (signed 16-bit), modulo 2^32.
    #[inline(always)]
    pub(crate) fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: as for `smlad`: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("smlabb {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 c = in(reg) acc, options(pure, nomem, nostack));
        }
        r
    }

    /// `acc + a.hi * b.hi` (signed 16-bit), modulo 2^32.
    #[inline(always)]
    pub(crate) fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: as for `smlad`: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("smlatt {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
                 c = in(reg) acc, options(pure, nomem, nostack));
        }
        r
    }

    /// Bytes 0 and 2 of `x`, sign-extended to the two 16-bit lanes.
    #[inline(always)]
    pub(crate) fn sxtb16(x: u32) -> u32 {
        let r: u32;
        // SAFETY: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// Bytes 1 and 3 of `x`, sign-extended to the two 16-bit lanes.
    #[inline(always)]
    pub(crate) fn sxtb16_ror8(x: u32) -> u32 {
        let r: u32;
        // SAFETY: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// `off` plus bytes 0 and 2 of `x` sign-extended, per 16-bit lane (modulo 2^16).
    #[inline(always)]
    pub(crate) fn sxtab16(off: u32, x: u32) -> u32 {
        let r: u32;
        // SAFETY: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("sxtab16 {r}, {o}, {x}", r = lateout(reg) r, o = in(reg) off, x = in(reg) x,
                 options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// `off` plus bytes 1 and 3 of `x` sign-extended, per 16-bit lane (modulo 2^16).
    #[inline(always)]
    pub(crate) fn sxtab16_ror8(off: u32, x: u32) -> u32 {
        let r: u32;
        // SAFETY: pure register arithmetic, no memory, no stack.
        unsafe {
            asm!("sxtab16 {r}, {o}, {x}, ror #8", r = lateout(reg) r, o = in(reg) off,
                 x = in(reg) x, options(pure, nomem, nostack, preserves_flags));
        }
        r
    }

    /// `-zp` in both 16-bit lanes (`zp` is int8, so `-zp` fits).
    #[inline(always)]
    pub(crate) fn lanes_of_neg(zp: i32) -> u32 {
        let n = (zp.wrapping_neg() as u16) as u32;
        n | (n << 16)
    }

    /// Two signed 16-bit values as one word (`lo` in bits 0..16).
    #[inline(always)]
    pub(crate) fn pack(lo: i8, hi: i8) -> u32 {
        (lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)
    }

    /// Four int8 values as one little-endian word (an unaligned `LDR`).
    #[inline(always)]
    pub(crate) fn word(c: &[i8; 4]) -> u32 {
        u32::from_le_bytes(c.map(|b| b as u8))
    }

    /// `multiply_by_quantized_multiplier(acc + bias, mult, shift)`, bit for bit.
    ///
    /// Right shifts of at least one (`shift <= -2` in the `(multiplier, shift)` convention,
    /// i.e. `total = 31 - shift >= 33`) take a 32-bit path: with `P = x * mult` exact,
    /// `floor((P + 2^(total-1)) / 2^total) = floor((floor(P / 2^32) + 2^(r-1)) / 2^r)` for
    /// `r = total - 32 >= 1` (nested floors of divisions by positive integers compose, and
    /// `2^(total-1) / 2^32 = 2^(r-1)` is an integer). `floor(P / 2^32)` is the high word of the
    /// product (`SMULL`), at most 2^30 in magnitude, so adding `2^(r-1) <= 2^29` cannot
    /// overflow and the result needs no saturation. Other shifts call the reference function.
    #[inline(always)]
    pub(crate) fn requantize(acc: i32, (bias, mult, shift): (i32, i32, i32)) -> i32 {
        let x = acc.wrapping_add(bias);
        let total = 31 - shift.clamp(-31, 30);
        if total > 32 {
            let r = (total - 32) as u32;
            let hi = ((x as i64 * mult as i64) >> 32) as i32;
            (hi + (1 << (r - 1))) >> r
        } else {
            multiply_by_quantized_multiplier(x, mult, shift)
        }
    }
}

use dsp::{lanes_of_neg, pack, requantize, smlabb, smlad, smlatt, sxtab16, sxtab16_ror8};
use dsp::{sxtb16, sxtb16_ror8, word};

/// 2-D convolution; same contract and bytes as [`crate::kernels::reference::conv2d`].
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
    let groups = geo.groups.max(1);
    let [_, kh, kw, i_full] = w_shape;
    let cin_g = in_shape.c / groups;
    let pointwise = kh == 1 && kw == 1;
    let k_len = if pointwise { cin_g } else { kh * kw * i_full };
    let p = Params {
        geo,
        in_shape,
        zp: in_zp,
        weights,
        w_shape,
        chan,
        stage,
        out_shape,
    };
    if cin_g == 1 && groups > 1 && i_full == 1 && kh == 3 && kw == 3 && geo.dilation == [1, 1] {
        depthwise3x3(&p, groups, input, output);
    } else if groups == 1 && i_full > 0 && k_len > 0 && k_len <= COL_LEN {
        matrix(&p, k_len, input, output);
    } else {
        portable::conv2d(
            geo, input, in_shape, in_zp, weights, w_shape, chan, stage, output, out_shape,
        );
    }
}

struct Params<'a, 'g> {
    geo: &'g ConvGeometry,
    in_shape: Shape,
    zp: i32,
    weights: &'a [i8],
    w_shape: [usize; 4],
    chan: ChannelQuant<'a>,
    stage: OutputStage,
    out_shape: Shape,
}

impl Params<'_, '_> {
    #[inline(always)]
    fn finish(&self, acc: i32, q: (i32, i32, i32)) -> i8 {
        self.stage.finish(requantize(acc, q))
    }
}

/// One position's dot-product operand, widened: `SLOT` 0 or 1 of `col`'s groups
/// (`[x0 - zp, x2 - zp]`, `[x1 - zp, x3 - zp]` per four values) and the last `len % 4`
/// values in `tail`.
#[inline(always)]
fn widen<const SLOT: usize>(
    src: &[i8],
    off: u32,
    zp: i32,
    col: &mut [[u32; 4]],
    tail: &mut [i32; 3],
) {
    let (quads, rest) = src.as_chunks::<4>();
    let n = quads.len().min(col.len());
    let (quads, col) = (&quads[..n], &mut col[..n]);
    for i in 0..n {
        let x = word(&quads[i]);
        col[i][2 * SLOT] = sxtab16(off, x);
        col[i][2 * SLOT + 1] = sxtab16_ror8(off, x);
    }
    for (t, &x) in tail.iter_mut().zip(rest) {
        *t = x as i32 - zp;
    }
}

/// Two weight rows against two widened positions: `acc` is
/// `[row 0 pos 0, row 0 pos 1, row 1 pos 0, row 1 pos 1]`. Both rows are at least
/// `4 * col.len()` long.
#[inline(always)]
fn mac_2x2(col: &[[u32; 4]], w0: &[i8], w1: &[i8], acc: &mut [i32; 4]) {
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    let n = col.len();
    let (w0, w1) = (&w0.as_chunks::<4>().0[..n], &w1.as_chunks::<4>().0[..n]);
    for i in 0..n {
        let c = &col[i];
        let wa = word(&w0[i]);
        let (lo, hi) = (sxtb16(wa), sxtb16_ror8(wa));
        a0 = smlad(lo, c[0], a0);
        a0 = smlad(hi, c[1], a0);
        a1 = smlad(lo, c[2], a1);
        a1 = smlad(hi, c[3], a1);
        let wb = word(&w1[i]);
        let (lo, hi) = (sxtb16(wb), sxtb16_ror8(wb));
        a2 = smlad(lo, c[0], a2);
        a2 = smlad(hi, c[1], a2);
        a3 = smlad(lo, c[2], a3);
        a3 = smlad(hi, c[3], a3);
    }
    *acc = [a0, a1, a2, a3];
}

/// One group, a dot product of `k_len <= COL_LEN` values: pointwise reads each position's
/// input channels in place, `kxk` gathers the window into a byte buffer in the weights'
/// layout first (`[kh][kw][i_full]`; padding taps and inactive columns at the zero point).
/// Positions go in pairs, output channels in pairs ([`mac_2x2`]); an odd last position or
/// channel repeats the previous one (computed, not stored).
fn matrix(p: &Params<'_, '_>, k_len: usize, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let pointwise = kh == 1 && kw == 1;
    let cin = ins.c;
    let w_row = kh * kw * i_full;
    let n_out = outs.c;
    let n_pos = outs.h * outs.w;
    let groups = k_len / 4;
    let body = groups * 4;
    let off = lanes_of_neg(p.zp);
    let mut col = [[0u32; 4]; COL_GROUPS];
    let col = &mut col[..groups];
    let mut tails = [[0i32; 3]; 2];
    // The window as bytes; for pointwise, the operand of a position in the padding.
    let mut bytes = [p.zp as i8; COL_LEN];
    let bytes = &mut bytes[..k_len];
    // Gathers position `q`'s operand and widens it into `SLOT`.
    let mut gather = |q: usize, slot: usize, col: &mut [[u32; 4]], tails: &mut [[i32; 3]; 2]| {
        let (oy, ox) = (q / outs.w, q % outs.w);
        let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
        let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
        let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
        let src: &[i8] = if pointwise {
            if ky_r.is_empty() || kx_r.is_empty() {
                bytes
            } else {
                let (iy, ix) = (y0 - geo.pad[0], x0 - geo.pad[1]);
                &input[(iy * ins.w + ix) * cin..][..k_len]
            }
        } else {
            if ky_r.len() < kh || kx_r.len() < kw {
                bytes.fill(p.zp as i8);
            }
            if !kx_r.is_empty() {
                for ky in ky_r.clone() {
                    let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
                    let row = &mut bytes[ky * kw * i_full..(ky + 1) * kw * i_full];
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
            bytes
        };
        if slot == 0 {
            widen::<0>(src, off, p.zp, col, &mut tails[0]);
        } else {
            widen::<1>(src, off, p.zp, col, &mut tails[1]);
        }
    };
    let mut q0 = 0;
    while q0 < n_pos {
        let q1 = (q0 + 1).min(n_pos - 1);
        gather(q0, 0, col, &mut tails);
        gather(q1, 1, col, &mut tails);
        let mut o0 = 0;
        while o0 < n_out {
            let o1 = (o0 + 1).min(n_out - 1);
            let r0 = &p.weights[o0 * w_row..][..k_len];
            let r1 = &p.weights[o1 * w_row..][..k_len];
            let mut acc = [0i32; 4];
            mac_2x2(col, r0, r1, &mut acc);
            for (j, (&w0, &w1)) in r0[body..].iter().zip(&r1[body..]).enumerate() {
                let (w0, w1) = (w0 as i32, w1 as i32);
                acc[0] = acc[0].wrapping_add(tails[0][j] * w0);
                acc[1] = acc[1].wrapping_add(tails[1][j] * w0);
                acc[2] = acc[2].wrapping_add(tails[0][j] * w1);
                acc[3] = acc[3].wrapping_add(tails[1][j] * w1);
            }
            let qa = p.chan.get(o0);
            output[q0 * n_out + o0] = p.finish(acc[0], qa);
            if q1 != q0 {
                output[q1 * n_out + o0] = p.finish(acc[1], qa);
            }
            if o1 != o0 {
                let qb = p.chan.get(o1);
                output[q0 * n_out + o1] = p.finish(acc[2], qb);
                if q1 != q0 {
                    output[q1 * n_out + o1] = p.finish(acc[3], qb);
                }
            }
            o0 += 2;
        }
        q0 += 2;
    }
}

/// Depthwise 3x3, any channel multiplier, stride and padding, no dilation. Per block of up to
/// [`DW_BLOCK`] input channels and per multiplier index `m`, the block's weights are widened
/// once into `[tap][quad] -> ([w0, w2], [w1, w3])` (channel `g` of the quad is output channel
/// `g * mult + m`, weights `[o][3][3][1]`); then per output position and quad of channels,
/// each tap is one word of input widened to `[x0, x2]`, `[x1, x3]` and four single 16-bit
/// multiply-accumulates (`SMLABB`/`SMLATT`), the nine taps unrolled for windows inside the
/// input. Channels past the last quad take a scalar loop.
fn depthwise3x3(p: &Params<'_, '_>, groups: usize, input: &[i8], output: &mut [i8]) {
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let c = ins.c;
    let mult = outs.c / groups;
    let off = lanes_of_neg(p.zp);
    let mut wbuf = [[[0u32; 2]; DW_QUADS]; 9];
    let tap_off: [usize; 9] = core::array::from_fn(|t| ((t / 3) * ins.w + t % 3) * c);
    let mut g0 = 0;
    while g0 < groups {
        let n = DW_BLOCK.min(groups - g0);
        let quads = n / 4;
        for m in 0..mult {
            let w_of = |g: usize, t: usize| p.weights[((g * mult + m) * 9) + t];
            for (t, row) in wbuf.iter_mut().enumerate() {
                for (q, wq) in row[..quads].iter_mut().enumerate() {
                    let g = g0 + 4 * q;
                    *wq = [
                        pack(w_of(g, t), w_of(g + 2, t)),
                        pack(w_of(g + 1, t), w_of(g + 3, t)),
                    ];
                }
            }
            for oy in 0..outs.h {
                let y0 = oy * geo.stride[0];
                let ky_r = taps(y0, geo.pad[0], 1, 3, ins.h);
                for ox in 0..outs.w {
                    let x0 = ox * geo.stride[1];
                    let kx_r = taps(x0, geo.pad[1], 1, 3, ins.w);
                    let out = &mut output[(oy * outs.w + ox) * outs.c..][..outs.c];
                    let full = ky_r.len() == 3 && kx_r.len() == 3;
                    // Window origin (may be "before" the input when clipped; only valid taps
                    // are read then).
                    let (iy0, ix0) = (y0 + ky_r.start, x0 + kx_r.start);
                    let (iy0, ix0) = (iy0 - geo.pad[0], ix0 - geo.pad[1]);
                    let base = (iy0 * ins.w + ix0) * c + g0;
                    let mut store = |q: usize, acc: [i32; 4]| {
                        for (j, &a) in acc.iter().enumerate() {
                            let o = (g0 + 4 * q + j) * mult + m;
                            out[o] = p.finish(a, p.chan.get(o));
                        }
                    };
                    if full {
                        // Every read is below base + tap_off[8] + 4 * quads <= the index of
                        // channel g0 + n of pixel (iy0 + 2, ix0 + 2), which is in the input.
                        let span = tap_off[8] + 4 * quads;
                        let win = &input[base..base + span];
                        for q in 0..quads {
                            let mut acc = [0i32; 4];
                            for (t, &to) in tap_off.iter().enumerate() {
                                let i = to + 4 * q;
                                // SAFETY: i + 4 <= tap_off[8] + 4 * quads = span = win.len()
                                // (tap_off is increasing in t and q < quads), and [i8; 4]
                                // has alignment 1: an in-bounds read of initialised bytes.
                                let x = word(unsafe { &*win.as_ptr().add(i).cast::<[i8; 4]>() });
                                let w = wbuf[t][q];
                                let (lo, hi) = (sxtab16(off, x), sxtab16_ror8(off, x));
                                acc[0] = smlabb(lo, w[0], acc[0]);
                                acc[2] = smlatt(lo, w[0], acc[2]);
                                acc[1] = smlabb(hi, w[1], acc[1]);
                                acc[3] = smlatt(hi, w[1], acc[3]);
                            }
                            store(q, acc);
                        }
                    } else if !kx_r.is_empty() {
                        for q in 0..quads {
                            let mut acc = [0i32; 4];
                            for ky in ky_r.clone() {
                                for kx in kx_r.clone() {
                                    let (dy, dx) = (ky - ky_r.start, kx - kx_r.start);
                                    let i = base + (dy * ins.w + dx) * c + 4 * q;
                                    let x = word(&input[i..i + 4].as_chunks::<4>().0[0]);
                                    let w = wbuf[ky * 3 + kx][q];
                                    let (lo, hi) = (sxtab16(off, x), sxtab16_ror8(off, x));
                                    acc[0] = smlabb(lo, w[0], acc[0]);
                                    acc[2] = smlatt(lo, w[0], acc[2]);
                                    acc[1] = smlabb(hi, w[1], acc[1]);
                                    acc[3] = smlatt(hi, w[1], acc[3]);
                                }
                            }
                            store(q, acc);
                        }
                    } else {
                        for q in 0..quads {
                            store(q, [0; 4]);
                        }
                    }
                    // Channels past the last quad.
                    for g in g0 + 4 * quads..g0 + n {
                        let mut acc = 0i32;
                        if !kx_r.is_empty() {
                            for ky in ky_r.clone() {
                                for kx in kx_r.clone() {
                                    let (dy, dx) = (ky - ky_r.start, kx - kx_r.start);
                                    let i = base - g0 + (dy * ins.w + dx) * c + g;
                                    let x = input[i] as i32 - p.zp;
                                    acc = acc.wrapping_add(x * w_of(g, ky * 3 + kx) as i32);
                                }
                            }
                        }
                        let o = g * mult + m;
                        out[o] = p.finish(acc, p.chan.get(o));
                    }
                }
            }
        }
        g0 += n;
    }
}
