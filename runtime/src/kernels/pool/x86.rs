//! The x86-64 variant of max pooling, with AVX-512 BW and VBMI, by output rows (as depthwise
//! convolution in `conv/x86_rows.rs`): each input row the window needs is split into `stride`
//! phase rows (padded columns `s * x + r`), so output byte `j` of an NHWC output row reads,
//! for tap `(ky, kx)`, byte `j + (kx / s) * c` of phase row `kx % s` of input row `ky`: 64
//! outputs per step are a `vpmaxsb` per tap. Padding columns hold -128 (never above a value of
//! the input), rows outside the input are skipped; layers where some window holds no input
//! value at all run the portable variant. The requantized output depends only on the int8
//! maximum: the 256 results (the reference's arithmetic) are a byte table, looked up 64 at a
//! time with two `vpermi2b` and a blend. Same bytes as the reference.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::portable;
use crate::kernels::common::{prefix, taps};
use crate::kernels::x86::{PhaseRows, vbmi_available};
use crate::kernels::{OutputStage, PoolGeometry, Rescale, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// Bytes of the phase rows (all `kh * stride` of them; 32 KiB on the stack).
const ROWS: usize = 32768;
/// Most kernel rows.
const MAX_KH: usize = 16;
/// Outputs below which the table costs more than it saves (the portable variant runs).
const MIN_OUT: usize = 1024;

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
    let [kh, kw] = geo.kernel;
    let [sy, sx] = geo.stride;
    let c = in_shape.c;
    let (oh, ow) = (out_shape.h, out_shape.w);
    // Every window holds an input value: the first and last windows of each axis do.
    let whole = |o: usize, s: usize, pad: usize, k: usize, n: usize| {
        o > 0 && !taps(0, pad, 1, k, n).is_empty() && !taps((o - 1) * s, pad, 1, k, n).is_empty()
    };
    let row_len = (ow * c).next_multiple_of(64) + (kw.saturating_sub(1) / sx.max(1)) * c;
    let fits = vbmi_available()
        && out_shape.c == c
        && c > 0
        && kh > 0
        && kw > 0
        && kh <= MAX_KH
        && sy > 0
        && sx > 0
        && out_shape.len() >= MIN_OUT
        && input.len() >= in_shape.len()
        && output.len() >= out_shape.len()
        && whole(oh, sy, geo.pad[0], kh, in_shape.h)
        && whole(ow, sx, geo.pad[1], kw, in_shape.w)
        && kh
            .checked_mul(sx)
            .and_then(|n| n.checked_mul(row_len))
            .is_some_and(|n| n <= ROWS);
    if !fits {
        return portable::max_pool(geo, input, in_shape, rescale, stage, output, out_shape);
    }
    let table: [u8; 256] = core::array::from_fn(|b| {
        let v = b as u8 as i8 as i32 - rescale.zero_point;
        stage.finish(multiply_by_quantized_multiplier(
            v,
            rescale.multiplier,
            rescale.shift,
        )) as u8
    });
    // SAFETY: AVX-512 F, BW and VBMI were detected (`vbmi_available`), and the checks above
    // are `rows`' contract.
    unsafe { rows(geo, input, in_shape, &table, output, out_shape, row_len) };
}

/// # Safety
/// AVX-512 F, BW and VBMI must be available; `max_pool`'s checks hold (slice lengths, every
/// window non-empty, `kh * sx * row_len <= ROWS`, `row_len` as computed there).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn rows(
    geo: &PoolGeometry,
    input: &[i8],
    ins: Shape,
    table: &[u8; 256],
    output: &mut [i8],
    outs: Shape,
    row_len: usize,
) {
    let [kh, kw] = geo.kernel;
    let [sy, sx] = geo.stride;
    let [pt, pl] = geo.pad;
    let c = ins.c;
    let out_run = outs.w * c;
    let in_run = ins.w * c;
    let phase = PhaseRows {
        sx,
        pad_l: pl,
        in_w: ins.w,
        cin: c,
        c,
        // Pixels of a phase row that taps read.
        n_x: outs.w + (kw - 1) / sx,
        row_len,
    };
    let mut buf = [MaybeUninit::<i8>::uninit(); ROWS];
    let rows = prefix(&mut buf, kh * sx * row_len, i8::MIN);
    // SAFETY (the four table loads): 64 bytes of the 256-byte table each.
    let t: [__m512i; 4] =
        core::array::from_fn(|q| unsafe { _mm512_loadu_si512(table.as_ptr().add(64 * q).cast()) });
    let mut held = [None::<usize>; MAX_KH];
    for oy in 0..outs.h {
        for (ky, held) in held.iter_mut().enumerate().take(kh) {
            let iy = (oy * sy + ky).checked_sub(pt).filter(|&iy| iy < ins.h);
            if *held == iy || iy.is_none() {
                *held = iy;
                continue;
            }
            *held = iy;
            let src = iy.map(|iy| &input[iy * in_run..][..in_run]);
            phase.fill(&mut rows[ky * sx * row_len..][..sx * row_len], src, i8::MIN);
        }
        let out_row = &mut output[oy * out_run..][..out_run];
        let mut j0 = 0;
        while j0 < out_run {
            let mut m = _mm512_set1_epi8(i8::MIN);
            for (ky, held) in held.iter().enumerate().take(kh) {
                if held.is_none() {
                    continue;
                }
                for kx in 0..kw {
                    let at = (ky * sx + kx % sx) * row_len + j0 + (kx / sx) * c;
                    let bytes = &rows[at..at + 64];
                    // SAFETY: `bytes` is 64 bytes long: one unaligned 64-byte load.
                    let v = unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) };
                    m = _mm512_max_epi8(m, v);
                }
            }
            // Byte `b` of the maximum indexes the table: bits 0-6 within a half, bit 7 picks
            // the half.
            let lo = _mm512_permutex2var_epi8(t[0], m, t[1]);
            let hi = _mm512_permutex2var_epi8(t[2], m, t[3]);
            let r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(m), lo, hi);
            let n = 64.min(out_run - j0);
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            // SAFETY: the masked store writes the `n` bytes `j0 .. j0 + n` of `out_row`;
            // masked-off bytes are neither written nor faulted on.
            unsafe { _mm512_mask_storeu_epi8(out_row.as_mut_ptr().add(j0), mask, r) };
            j0 += 64;
        }
    }
}
