//! The Helium variant: Cortex-M cores with the M-profile Vector Extension (MVE, integer), the
//! Cortex-M55 (`cfg(edgeslim_arm_mve)`, set by `runtime/build.rs` for a `thumbv8m.main` build
//! with `-C target-cpu=cortex-m55`), the reference's bytes.
//!
//! The multiply-accumulates are `VMLADAVA.S8 Rda, Qn, Qm`: sixteen int8 products of two
//! 128-bit vectors summed into a 32-bit general register, modulo 2^32. Its operands are int8,
//! and `x - zp` is not (it spans `-255..=255`), so the dot product runs on the raw input and
//! the zero point is taken out once per output channel: `sum((x - zp) * w) = sum(x * w) -
//! zp * sum(w)` holds modulo 2^32 (a ring), and the reference's sums are exactly its wrapping
//! int32 sums, so folding `-zp * sum(w)` into the bias gives the reference's `acc + bias`
//! bit for bit. The row sums `sum(w)` (`VADDVA.S8`) are taken once per call and output
//! channel; padding taps and the inactive columns of a slimmed input hold the zero point,
//! whose contribution `zp * w - zp * w` is 0 as in the reference.
//!
//! Requantization is the DSP variant's, with its argument ([`Requant`]: one rounding, the
//! 32-bit form for right shifts of at least one, exact), four channels per step:
//! `VMULH.S32` is the high word of the 64-bit product (`floor(P / 2^32)`, as `SMMUL`), the
//! rounding constant is added, `VSHL.S32` by `-r` is the arithmetic right shift (`>>`), then
//! the zero point (no overflow, see [`dsp::Requant`](super::arm_dsp::dsp::Requant)), the clamp
//! (`VMAX`/`VMIN`) and a truncating byte store (`VSTRB.32`) of values already in int8 range.
//! Channels whose shift needs the general path go through `dsp::requantize` one by one.
//!
//! Tails (dot products not a multiple of 16, channel blocks not a multiple of 4) are
//! predicated: `VCTP` makes a lane mask of the elements left and `VPST` runs the loads and
//! reductions (or the byte store) under it, so no lane past a slice's end is read or written.
//! The predicate register VPR is saved and restored around each block that sets it (Rust's
//! `asm!` has no VPR operand), the vector registers used are declared clobbered as their `d`
//! halves (`q0..q3` are `d0..d7`, caller-saved in the AAPCS; the depthwise block's `q4..q7`
//! are `d8..d15`, callee-saved, which the compiler then saves), the accumulators are fixed
//! even registers (`VMLADAVA`/`VADDVA` encode only even `Rda`: r0, r2, r4, r8) and the base
//! of a widening load or narrowing store a fixed low register (r0, r1: their encodings hold
//! three bits for it).
//!
//! Paths, by shape:
//! - one group (pointwise, and `kxk` through a gathered window of at most [`WIN`] bytes; a
//!   pointwise convolution over its own pixels reads the input in place at any length):
//!   [`matrix`], two positions by two output channels per tile (4 loads and 4 `VMLADAVA` per
//!   64 MACs), every row pair of a block of [`BLK`] channels in one `asm!` call
//!   ([`mve::dot_2x2_rows`], or [`mve::dot_2x2_short`] for at most 16 values, an odd last
//!   channel through [`mve::dot_2x2`]), the requantization prepared once per block
//!   ([`mve::requant_store`]);
//! - depthwise with a channel multiplier of 1 (any kernel of at most [`DW_TAPS`] taps, stride,
//!   padding; no dilation): [`depthwise`], sixteen channels per step in 32-bit lanes
//!   ([`mve::dw_sums16`]: `VLDRB.S32` of input and weights, `VSUB` of the zero point, `VMUL`,
//!   `VADD`: MVE's integer `VMLA` multiplies by a scalar, so the lane-wise product of two
//!   vectors is a `VMUL`);
//! - everything else (grouped, depthwise with a multiplier or dilation, longer windows, and the
//!   3x3 convolution of a one-channel input, whose DSP plane path is shorter) runs the DSP
//!   variant, which the Cortex-M55 also has.
//!
//! Stack: the matrix path two windows (2 KiB), the sums (512 B) and the prepared requantization
//! of a block (1 KiB); the depthwise path the block's transposed weights (1 KiB).

use core::mem::MaybeUninit;

use super::arm_dsp;
use super::arm_dsp::dsp::{Requant, requantize};
use crate::kernels::common::{prefix, taps};
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};

/// Longest gathered operand (`kh * kw * i_full` of a `kxk` convolution, or `cin` of a
/// pointwise one that pads or strides): two stack buffers of this many bytes.
const WIN: usize = 1024;

/// Output channels of a block: their prepared requantization lives on the stack.
const BLK: usize = 64;

/// Channels of a depthwise block ([`mve::dw_sums16`]: four vectors of four).
const DW_CH: usize = 16;

/// Most taps (`kh * kw`) of the depthwise path: a block's transposed weights on the stack
/// (1 KiB).
const DW_TAPS: usize = 64;

/// The MVE instructions, as `asm!` (Rust has no MVE intrinsics), shared with the fully
/// connected variant.
pub(crate) mod mve {
    use core::arch::asm;

    use super::super::arm_dsp::dsp::Requant;

    /// Sixteen `VMLADAVA.S8` lanes at a time.
    pub(crate) const LANES: usize = 16;

    /// Sums per position in the buffer of [`dot_2x2_short`] and [`dot_2x2_rows`] (a block of
    /// output channels).
    pub(crate) const SUMS: usize = super::BLK;

    /// Channels of a depthwise block.
    pub(crate) const DW_CH: usize = super::DW_CH;

    /// `[x0 . w0, x1 . w0, x0 . w1, x1 . w1]`: the int8 dot products (wrapping int32) of two
    /// operands `x0`, `x1` with two weight rows `w0`, `w1`, over the first `n` values of each
    /// (`n` at most every slice's length).
    ///
    /// One loop of 16 values per iteration (four `VLDRB.U8`, four `VMLADAVA.S8`, the count),
    /// then the `n % 16` values left under a `VCTP.8` predicate.
    #[inline(always)]
    pub(crate) fn dot_2x2(x0: &[i8], x1: &[i8], w0: &[i8], w1: &[i8], n: usize) -> [i32; 4] {
        assert!(n <= x0.len() && n <= x1.len() && n <= w0.len() && n <= w1.len());
        let (mut a00, mut a01, mut a10, mut a11) = (0i32, 0i32, 0i32, 0i32);
        // SAFETY: the loop reads `16 * (n / 16)` bytes from each of the four pointers, which
        // start at their slices' first elements and post-increment by 16; the tail reads the
        // next `n % 16` bytes of each under the `VCTP.8` mask (inactive lanes are not
        // accessed): `n` bytes per slice in all, within each slice (asserted). Byte loads
        // need no alignment. It writes no memory and no stack. The changed registers are
        // the outputs (the accumulators r0, r2, r4, r8, even as `VMLADAVA` requires; the
        // pointers; the counts), q0..q3 (declared as d0..d7) and VPR, which it saves in
        // `vpr` and restores before it ends. Flags are not declared preserved.
        unsafe {
            asm!(
                "cmp {cnt}, #0",
                "beq 3f",
                "2:",
                "vldrb.u8 q0, [{x0}], #16",
                "vldrb.u8 q1, [{x1}], #16",
                "vldrb.u8 q2, [{w0}], #16",
                "vldrb.u8 q3, [{w1}], #16",
                "vmladava.s8 r0, q2, q0",
                "vmladava.s8 r2, q2, q1",
                "vmladava.s8 r4, q3, q0",
                "vmladava.s8 r8, q3, q1",
                "subs {cnt}, {cnt}, #1",
                "bne 2b",
                "3:",
                "cmp {rem}, #0",
                "beq 4f",
                "vmrs {vpr}, p0",
                "vctp.8 {rem}",
                "vpstttt",
                "vldrbt.u8 q0, [{x0}]",
                "vldrbt.u8 q1, [{x1}]",
                "vldrbt.u8 q2, [{w0}]",
                "vldrbt.u8 q3, [{w1}]",
                "vpstttt",
                "vmladavat.s8 r0, q2, q0",
                "vmladavat.s8 r2, q2, q1",
                "vmladavat.s8 r4, q3, q0",
                "vmladavat.s8 r8, q3, q1",
                "vmsr p0, {vpr}",
                "4:",
                x0 = inout(reg) x0.as_ptr() => _,
                x1 = inout(reg) x1.as_ptr() => _,
                w0 = inout(reg) w0.as_ptr() => _,
                w1 = inout(reg) w1.as_ptr() => _,
                cnt = inout(reg) n / LANES => _,
                rem = in(reg) n % LANES,
                vpr = out(reg) _,
                inout("r0") a00,
                inout("r2") a01,
                inout("r4") a10,
                inout("r8") a11,
                out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                out("d4") _, out("d5") _, out("d6") _, out("d7") _,
                options(nostack, readonly),
            );
        }
        [a00, a01, a10, a11]
    }

    /// [`dot_2x2`] for dot products of at most 16 values, over many row pairs: for `j <
    /// pairs`, with rows `r0 = 2j`, `r1 = 2j + 1` of `rows` (`w_row` bytes apart, the first
    /// `n` values of each), `s0[2j] = x0 . r0`, `s0[2j + 1] = x0 . r1`, `s1[2j] = x1 . r0`,
    /// `s1[2j + 1] = x1 . r1`, where `s1` is `s[SUMS..]` and `s0` is `s`. The operands are loaded once under a `VCTP.8` mask of `n`
    /// lanes, which then stays on for the whole loop: per row pair two predicated loads, four
    /// predicated `VMLADAV.S8` (the sums of the active lanes only), two stores.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn dot_2x2_short(
        x0: &[i8],
        x1: &[i8],
        rows: &[i8],
        w_row: usize,
        n: usize,
        pairs: usize,
        s: &mut [i32; 2 * SUMS],
    ) {
        assert!(
            (1..=LANES).contains(&n)
                && n <= x0.len()
                && n <= x1.len()
                && n <= w_row
                && pairs > 0
                && 2 * pairs <= SUMS
                && (2 * pairs - 1)
                    .checked_mul(w_row)
                    .and_then(|v| v.checked_add(n))
                    .is_some_and(|end| end <= rows.len())
        );
        // SAFETY: reads the first `n` bytes of `x0` and `x1` and, per pair `j < pairs`, the
        // first `n` bytes of rows `2j` and `2j + 1` (pointers start at rows 0 and 1 and step
        // by `2 * w_row`; the last row read ends at `(2 * pairs - 1) * w_row + n <=
        // rows.len()`, asserted), all under the `VCTP.8` mask of `n` lanes (inactive lanes
        // are not accessed; byte loads need no alignment). It writes `s[2j], s[2j + 1]` and
        // `s[SUMS + 2j], s[SUMS + 2j + 1]` for `j < pairs` (`2 * pairs <= SUMS`, asserted;
        // `STRD` of 4-byte aligned i32s, the second at the constant offset `4 * SUMS`). The
        // loop runs `pairs >= 1` times. No stack. The changed registers are the outputs (r0,
        // r2, r4, r8, even as `VMLADAV` requires; they bring `n` and the operand pointers in),
        // q0..q3 (d0..d7) and VPR, saved before the `VCTP` and restored at the end.
        unsafe {
            asm!(
                "vmrs {vpr}, p0",
                "vctp.8 r0",
                "vpstt",
                "vldrbt.u8 q0, [r2]",
                "vldrbt.u8 q1, [r4]",
                "2:",
                "vpstt",
                "vldrbt.u8 q2, [{w0}]",
                "vldrbt.u8 q3, [{w1}]",
                "vpstttt",
                "vmladavt.s8 r0, q2, q0",
                "vmladavt.s8 r2, q2, q1",
                "vmladavt.s8 r4, q3, q0",
                "vmladavt.s8 r8, q3, q1",
                "strd r2, r8, [{s}, #{off}]",
                "strd r0, r4, [{s}], #8",
                "add {w0}, {w0}, {step}",
                "add {w1}, {w1}, {step}",
                "subs {pairs}, {pairs}, #1",
                "bne 2b",
                "vmsr p0, {vpr}",
                w0 = inout(reg) rows.as_ptr() => _,
                w1 = inout(reg) rows.as_ptr().wrapping_add(w_row) => _,
                step = in(reg) 2 * w_row,
                pairs = inout(reg) pairs => _,
                s = inout(reg) s.as_mut_ptr() => _,
                off = const 4 * SUMS,
                vpr = out(reg) _,
                inout("r0") n => _,
                inout("r2") x0.as_ptr() => _,
                inout("r4") x1.as_ptr() => _,
                out("r8") _,
                out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                out("d4") _, out("d5") _, out("d6") _, out("d7") _,
                options(nostack),
            );
        }
    }

    /// [`dot_2x2`] over many row pairs in one call, for dot products of any length `n >= 1`:
    /// for `j < pairs`, with rows `r0 = 2j`, `r1 = 2j + 1` of `rows` (`w_row` bytes apart, the
    /// first `n` values of each), `s[2j] = x0 . r0`, `s[2j + 1] = x0 . r1`, `s[SUMS + 2j] =
    /// x1 . r0`, `s[SUMS + 2j + 1] = x1 . r1`. Per pair: the `n / 16` full steps (four
    /// loads, four `VMLADAVA.S8`), then, when `n % 16 > 0`, the rest under the `VCTP.8` mask
    /// set once before the loop (unpredicated instructions ignore it), two stores. What the
    /// pair loop needs besides the twelve registers (the operands' starts, the step count,
    /// the step from a row's end to the next pair's, the saved VPR) lives in a small array
    /// in memory.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn dot_2x2_rows(
        x0: &[i8],
        x1: &[i8],
        rows: &[i8],
        w_row: usize,
        n: usize,
        pairs: usize,
        s: &mut [i32; 2 * SUMS],
    ) {
        assert!(
            n > 0
                && n <= x0.len()
                && n <= x1.len()
                && n <= w_row
                && pairs > 0
                && 2 * pairs <= SUMS
                && (2 * pairs - 1)
                    .checked_mul(w_row)
                    .and_then(|v| v.checked_add(n))
                    .is_some_and(|end| end <= rows.len())
        );
        let full = n / LANES;
        // [x0, x1, full steps, step to the next pair's rows, saved VPR]
        let mut ctx: [u32; 5] = [
            x0.as_ptr() as u32,
            x1.as_ptr() as u32,
            full as u32,
            (2 * w_row - LANES * full) as u32,
            0,
        ];
        macro_rules! rows_loop {
            ($($tail:literal),*) => {
                asm!(
                    "vmrs {cnt}, p0",
                    "str {cnt}, [{ctx}, #16]",
                    "vctp.8 r0",
                    "2:",
                    "movs r0, #0",
                    "movs r2, #0",
                    "movs r4, #0",
                    "mov r8, r0",
                    "ldrd {x0}, {x1}, [{ctx}]",
                    "ldr {cnt}, [{ctx}, #8]",
                    "cmp {cnt}, #0",
                    "beq 4f",
                    "3:",
                    "vldrb.u8 q0, [{x0}], #16",
                    "vldrb.u8 q1, [{x1}], #16",
                    "vldrb.u8 q2, [{w0}], #16",
                    "vldrb.u8 q3, [{w1}], #16",
                    "vmladava.s8 r0, q2, q0",
                    "vmladava.s8 r2, q2, q1",
                    "vmladava.s8 r4, q3, q0",
                    "vmladava.s8 r8, q3, q1",
                    "subs {cnt}, {cnt}, #1",
                    "bne 3b",
                    "4:",
                    $($tail,)*
                    "strd r2, r8, [{s}, #{off}]",
                    "strd r0, r4, [{s}], #8",
                    "ldr {cnt}, [{ctx}, #12]",
                    "add {w0}, {w0}, {cnt}",
                    "add {w1}, {w1}, {cnt}",
                    "subs {pairs}, {pairs}, #1",
                    "bne 2b",
                    "ldr {cnt}, [{ctx}, #16]",
                    "vmsr p0, {cnt}",
                    ctx = in(reg) ctx.as_mut_ptr(),
                    w0 = inout(reg) rows.as_ptr() => _,
                    w1 = inout(reg) rows.as_ptr().wrapping_add(w_row) => _,
                    pairs = inout(reg) pairs => _,
                    s = inout(reg) s.as_mut_ptr() => _,
                    off = const 4 * SUMS,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    cnt = out(reg) _,
                    // Brings `n % 16` in for the `VCTP`, then an accumulator.
                    inout("r0") n % LANES => _,
                    out("r2") _,
                    out("r4") _,
                    out("r8") _,
                    out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                    out("d4") _, out("d5") _, out("d6") _, out("d7") _,
                    options(nostack),
                )
            };
        }
        // SAFETY: per pair `j < pairs` the block reads `n` bytes from each operand (the
        // starts `x0`, `x1` reloaded from `ctx` per pair) and from rows `2j` and `2j + 1`
        // (the row pointers start at rows 0 and 1, advance by 16 per full step and then by
        // `2 * w_row - 16 * full` to the next pair's rows; the last row read ends at `(2 *
        // pairs - 1) * w_row + n <= rows.len()`, asserted): `16 * full` bytes unpredicated,
        // then `n % 16` under the `VCTP.8` mask (inactive lanes are not accessed), all inside
        // the slices (`n` at most each operand's length, `n <= w_row`). Byte loads need no
        // alignment. It writes `s[2j], s[2j + 1]`, `s[SUMS + 2j], s[SUMS + 2j + 1]` (`2 *
        // pairs <= SUMS`, asserted; `STRD` of 4-byte aligned i32s) and `ctx[4]` (the saved
        // VPR, `ctx` is 4-byte aligned). The loop runs `pairs >= 1` times. No stack. The
        // changed registers are outputs (r0, r2, r4, r8 even as `VMLADAVA` requires),
        // q0..q3 (d0..d7) and VPR, restored from `ctx[4]` at the end.
        unsafe {
            if n % LANES == 0 {
                rows_loop!()
            } else {
                rows_loop!(
                    "vpstttt",
                    "vldrbt.u8 q0, [{x0}]",
                    "vldrbt.u8 q1, [{x1}]",
                    "vldrbt.u8 q2, [{w0}]",
                    "vldrbt.u8 q3, [{w1}]",
                    "vpstttt",
                    "vmladavat.s8 r0, q2, q0",
                    "vmladavat.s8 r2, q2, q1",
                    "vmladavat.s8 r4, q3, q0",
                    "vmladavat.s8 r8, q3, q1"
                )
            }
        }
    }

    /// Depthwise sums of one position for [`DW_CH`] channels (`mult = 1`): `s[j] = sum over
    /// the window's `nky` x `nkx` taps of (x[tap][j] - zp) * w[tap][j]`, wrapping int32, where
    /// tap `(ky, kx)`'s sixteen input values are at `x[ky * x_row + kx * c..]` and its weights
    /// at `w[ky * w_row + kx * DW_CH..]` (the block's weights transposed to `[tap][channel]`).
    /// Per tap, four times: two widening loads (`VLDRB.S32`), `VSUB` of the zero point,
    /// `VMUL`, `VADD` into one of four accumulator vectors (q4..q7).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn dw_sums16(
        x: &[i8],
        c: usize,
        x_row: usize,
        w: &[i8],
        w_row: usize,
        nky: usize,
        nkx: usize,
        zp: i32,
        s: &mut [i32; DW_CH],
    ) {
        let last = |row: usize, col: usize| (nky - 1) * row + (nkx - 1) * col + DW_CH;
        assert!(
            nky > 0
                && nkx > 0
                && c >= 1
                && last(x_row, c) <= x.len()
                && last(w_row, DW_CH) <= w.len()
        );
        // [nkx, step to the next input row, step to the next weight row, where to store]
        let ctx: [u32; 4] = [
            nkx as u32,
            (x_row - nkx * c) as u32,
            (w_row - nkx * DW_CH) as u32,
            s.as_mut_ptr() as u32,
        ];
        // SAFETY: tap `(ky, kx)` (`ky < nky`, `kx < nkx`) reads the 16 bytes at `x + ky *
        // x_row + kx * c` (four `VLDRB.S32` at offsets 0, 4, 8, 12) and at `w + ky * w_row +
        // kx * 16`: the pointers start at the slices' first elements, advance by `c` (input)
        // and 16 (weights, post-increment) per tap and by the row steps from `ctx` (`x_row -
        // nkx * c`, `w_row - nkx * 16`, both non-negative as the caller's rows hold `nkx`
        // taps) per row, so the last bytes read end at `last(..)`, within both slices
        // (asserted). Byte loads need no alignment. The widening loads encode only r0..r7 as
        // their base: the two read pointers are r0 and r1. It writes the 64 bytes of `s` (4-byte
        // aligned `VSTRW`), reads `ctx` (4-byte aligned). No stack. The changed registers are
        // the outputs and q0..q7 (d0..d15; d8..d15 are callee-saved, so the compiler saves them
        // around the block).
        unsafe {
            asm!(
                "vmov.i32 q4, #0",
                "vmov.i32 q5, #0",
                "vmov.i32 q6, #0",
                "vmov.i32 q7, #0",
                "2:",
                "ldr {cnt}, [{ctx}]",
                "3:",
                "vldrb.s32 q0, [r0]",
                "vldrb.s32 q1, [r1], #4",
                "vsub.i32 q0, q0, {zp}",
                "vmul.i32 q0, q0, q1",
                "vadd.i32 q4, q4, q0",
                "vldrb.s32 q0, [r0, #4]",
                "vldrb.s32 q1, [r1], #4",
                "vsub.i32 q0, q0, {zp}",
                "vmul.i32 q0, q0, q1",
                "vadd.i32 q5, q5, q0",
                "vldrb.s32 q0, [r0, #8]",
                "vldrb.s32 q1, [r1], #4",
                "vsub.i32 q0, q0, {zp}",
                "vmul.i32 q0, q0, q1",
                "vadd.i32 q6, q6, q0",
                "vldrb.s32 q0, [r0, #12]",
                "vldrb.s32 q1, [r1], #4",
                "vsub.i32 q0, q0, {zp}",
                "vmul.i32 q0, q0, q1",
                "vadd.i32 q7, q7, q0",
                "add r0, r0, {c}",
                "subs {cnt}, {cnt}, #1",
                "bne 3b",
                "ldr {cnt}, [{ctx}, #4]",
                "add r0, r0, {cnt}",
                "ldr {cnt}, [{ctx}, #8]",
                "add r1, r1, {cnt}",
                "subs {nky}, {nky}, #1",
                "bne 2b",
                "ldr {cnt}, [{ctx}, #12]",
                "vstrw.32 q4, [{cnt}]",
                "vstrw.32 q5, [{cnt}, #16]",
                "vstrw.32 q6, [{cnt}, #32]",
                "vstrw.32 q7, [{cnt}, #48]",
                inout("r0") x.as_ptr() => _,
                inout("r1") w.as_ptr() => _,
                c = in(reg) c,
                zp = in(reg) zp,
                nky = inout(reg) nky => _,
                ctx = in(reg) ctx.as_ptr(),
                cnt = out(reg) _,
                out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                out("d8") _, out("d9") _, out("d10") _, out("d11") _,
                out("d12") _, out("d13") _, out("d14") _, out("d15") _,
                options(nostack),
            );
        }
    }

    /// `([x . w0, x . w1], [sum(w0), sum(w1)])` over the first `n` values of each slice
    /// (wrapping int32): one operand against two weight rows, with the rows' sums taken in
    /// the same pass (the fully connected layer reads each weight once).
    #[inline(always)]
    pub(crate) fn dot_1x2_sums(x: &[i8], w0: &[i8], w1: &[i8], n: usize) -> ([i32; 2], [i32; 2]) {
        assert!(n <= x.len() && n <= w0.len() && n <= w1.len());
        let (mut d0, mut s0, mut d1, mut s1) = (0i32, 0i32, 0i32, 0i32);
        // SAFETY: as for `dot_2x2`: `n` bytes read from each slice from its start (16 per
        // iteration, then `n % 16` under the `VCTP.8` mask), no memory written, no stack;
        // the changed registers are the outputs (r0, r2, r4, r8 even as `VMLADAVA`/`VADDVA`
        // require), q0..q2 (declared as d0..d5) and VPR (saved and restored).
        unsafe {
            asm!(
                "cmp {cnt}, #0",
                "beq 3f",
                "2:",
                "vldrb.u8 q0, [{x}], #16",
                "vldrb.u8 q1, [{w0}], #16",
                "vldrb.u8 q2, [{w1}], #16",
                "vmladava.s8 r0, q1, q0",
                "vaddva.s8 r2, q1",
                "vmladava.s8 r4, q2, q0",
                "vaddva.s8 r8, q2",
                "subs {cnt}, {cnt}, #1",
                "bne 2b",
                "3:",
                "cmp {rem}, #0",
                "beq 4f",
                "vmrs {vpr}, p0",
                "vctp.8 {rem}",
                "vpsttt",
                "vldrbt.u8 q0, [{x}]",
                "vldrbt.u8 q1, [{w0}]",
                "vldrbt.u8 q2, [{w1}]",
                "vpstttt",
                "vmladavat.s8 r0, q1, q0",
                "vaddvat.s8 r2, q1",
                "vmladavat.s8 r4, q2, q0",
                "vaddvat.s8 r8, q2",
                "vmsr p0, {vpr}",
                "4:",
                x = inout(reg) x.as_ptr() => _,
                w0 = inout(reg) w0.as_ptr() => _,
                w1 = inout(reg) w1.as_ptr() => _,
                cnt = inout(reg) n / LANES => _,
                rem = in(reg) n % LANES,
                vpr = out(reg) _,
                inout("r0") d0,
                inout("r2") s0,
                inout("r4") d1,
                inout("r8") s1,
                out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                out("d4") _, out("d5") _,
                options(nostack, readonly),
            );
        }
        ([d0, d1], [s0, s1])
    }

    /// `sum(w)` over the first `n` values (wrapping int32): `VADDVA.S8`, 16 per step.
    #[inline(always)]
    pub(crate) fn sum_i8(w: &[i8], n: usize) -> i32 {
        assert!(n <= w.len());
        let mut s = 0i32;
        // SAFETY: reads the first `n` bytes of `w` (16 per iteration, then `n % 16` under
        // the `VCTP.8` mask), no memory written, no stack; changes the outputs (r0, even as
        // `VADDVA` requires), q0 (d0, d1) and VPR (saved and restored).
        unsafe {
            asm!(
                "cmp {cnt}, #0",
                "beq 3f",
                "2:",
                "vldrb.u8 q0, [{w}], #16",
                "vaddva.s8 r0, q0",
                "subs {cnt}, {cnt}, #1",
                "bne 2b",
                "3:",
                "cmp {rem}, #0",
                "beq 4f",
                "vmrs {vpr}, p0",
                "vctp.8 {rem}",
                "vpstt",
                "vldrbt.u8 q0, [{w}]",
                "vaddvat.s8 r0, q0",
                "vmsr p0, {vpr}",
                "4:",
                w = inout(reg) w.as_ptr() => _,
                cnt = inout(reg) n / LANES => _,
                rem = in(reg) n % LANES,
                vpr = out(reg) _,
                inout("r0") s,
                out("d0") _, out("d1") _,
                options(nostack, readonly),
            );
        }
        s
    }

    /// Four channels' prepared requantization, as `requant_store` loads it: the folded bias
    /// (`bias - zp * sum(w)`), the multiplier, the rounding constant and `-r`, one vector
    /// each.
    #[derive(Clone, Copy, Default)]
    #[repr(C, align(4))]
    pub(crate) struct Quad {
        pub(crate) bias: [i32; 4],
        pub(crate) mult: [i32; 4],
        pub(crate) round: [i32; 4],
        pub(crate) neg_r: [i32; 4],
    }

    impl Quad {
        /// Lane `j` from `q` (made by `Requant::fast`, so `1 <= q.r <= 30`) with `bias` as
        /// its bias.
        #[inline(always)]
        pub(crate) fn set(&mut self, j: usize, q: &Requant, bias: i32) {
            self.bias[j] = bias;
            self.mult[j] = q.mult;
            self.round[j] = q.round;
            self.neg_r[j] = -(q.r as i32);
        }
    }

    /// `out[k] = clamp((((sums[k] + bias) * mult) >> 32) + round) >> r) + zp, lo, hi)` for
    /// `k < out.len()`, with channel `k`'s parameters in lane `k % 4` of `quads[k / 4]`: bit
    /// for bit `stage.finish(Requant::apply(..))` of the DSP variant (see the module docs),
    /// four channels per iteration, the last store under a `VCTP.32` mask.
    #[inline(always)]
    pub(crate) fn requant_store(
        sums: &[i32],
        quads: &[Quad],
        out: &mut [i8],
        zp: i32,
        lo: i8,
        hi: i8,
    ) {
        let n = out.len();
        let steps = n.div_ceil(4);
        assert!(n > 0 && 4 * steps <= sums.len() && steps <= quads.len());
        // SAFETY: iteration `i < steps` reads the 16 bytes of `sums[4i..4i + 4]` (inside
        // `sums`: `4 * steps <= sums.len()`, asserted) and the 64 bytes of `quads[i]` (`steps
        // <= quads.len()`), both 4-byte aligned as `VLDRW` needs (i32 arrays); it writes the
        // bytes `out[4i + j]` for the lanes `j` with `4i + j < n` only (the `VCTP.32` mask
        // of the `n - 4i` values left under `VPST`): inside `out`. The loop runs `steps >= 1`
        // times (`rem` goes from `n` down by 4 until it is not positive). No stack. The
        // changed registers are the outputs (r1 the store pointer), q0..q3 (d0..d7) and VPR,
        // saved and restored.
        unsafe {
            asm!(
                "vmrs {vpr}, p0",
                "vdup.32 q2, {lo}",
                "vdup.32 q3, {hi}",
                "2:",
                "vldrw.u32 q0, [{s}], #16",
                "vldrw.u32 q1, [{q}], #16",
                "vadd.i32 q0, q0, q1",
                "vldrw.u32 q1, [{q}], #16",
                "vmulh.s32 q0, q0, q1",
                "vldrw.u32 q1, [{q}], #16",
                "vadd.i32 q0, q0, q1",
                "vldrw.u32 q1, [{q}], #16",
                "vshl.s32 q0, q0, q1",
                "vadd.i32 q0, q0, {zp}",
                "vmax.s32 q0, q0, q2",
                "vmin.s32 q0, q0, q3",
                "vctp.32 {rem}",
                "vpst",
                "vstrbt.32 q0, [r1]",
                "adds r1, r1, #4",
                "subs {rem}, {rem}, #4",
                "bgt 2b",
                "vmsr p0, {vpr}",
                s = inout(reg) sums.as_ptr() => _,
                q = inout(reg) quads.as_ptr() => _,
                // A low register: the narrowing store encodes only r0..r7 as its base.
                inout("r1") out.as_mut_ptr() => _,
                rem = inout(reg) n => _,
                zp = in(reg) zp,
                lo = in(reg) lo as i32,
                hi = in(reg) hi as i32,
                vpr = out(reg) _,
                out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                out("d4") _, out("d5") _, out("d6") _, out("d7") _,
                options(nostack),
            );
        }
    }
}

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
    let pointwise = kh == 1 && kw == 1;
    let k_len = if pointwise {
        in_shape.c
    } else {
        kh * kw * i_full
    };
    let same_pixels = pointwise
        && geo.stride == [1, 1]
        && geo.pad == [0, 0]
        && out_shape.h == in_shape.h
        && out_shape.w == in_shape.w;
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
    // A 3x3 convolution of a one-channel input (a first layer) is a 9-value dot product per
    // output: the DSP variant's plane path takes half the instructions of the matrix path's
    // gather, tile and requantization per position there.
    let first_layer = groups == 1
        && in_shape.c == 1
        && i_full == 1
        && kh == 3
        && kw == 3
        && geo.dilation == [1, 1];
    if first_layer {
        arm_dsp::conv2d(
            geo, input, in_shape, in_zp, weights, w_shape, chan, stage, output, out_shape,
        );
    } else if groups > 1
        && in_shape.c == groups
        && out_shape.c == groups
        && i_full == 1
        && geo.dilation == [1, 1]
        && (1..=DW_TAPS).contains(&(kh * kw))
    {
        depthwise(&p, input, output);
    } else if groups == 1 && i_full > 0 && k_len > 0 && (k_len <= WIN || same_pixels) {
        matrix(&p, k_len, same_pixels, input, output);
    } else {
        arm_dsp::conv2d(
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

/// Position `q`'s operand of [`matrix`], `k_len` int8 values in the weights' layout: the
/// input pixel itself (pointwise over its own pixels, or inside the input), `win` held at the
/// zero point (a pointwise position in the padding), or the `kxk` window gathered into `win`
/// (`[kh][kw][i_full]`; padding taps and inactive columns at the zero point: `win` is filled
/// with it at the start and again for every clipped window, and only active columns are
/// copied in).
fn operand<'x>(
    p: &Params<'_, '_>,
    same_pixels: bool,
    k_len: usize,
    input: &'x [i8],
    q: usize,
    win: &'x mut [i8],
) -> &'x [i8] {
    crate::kernels::common::conv_operand(
        p.geo,
        p.in_shape,
        p.out_shape,
        p.w_shape,
        p.zp as i8,
        same_pixels,
        k_len,
        input,
        q,
        win,
    )
}

/// One group, a dot product of `k_len` values (at most [`WIN`] unless `same_pixels`): per
/// block of [`BLK`] output channels the row sums and the requantization are prepared once,
/// then positions go in pairs and output channels in pairs ([`mve::dot_2x2`]); an odd last
/// position or channel pairs with itself (computed, not stored).
///
/// Not inlined, as [`depthwise`]: each keeps its stack buffers in its own frame, so a call of
/// the DSP variant from [`conv2d`] does not sit on top of them (inlined, the M55's `deploy`
/// peaked at 12 KiB of stack where it needs 5.5 KiB).
#[inline(never)]
fn matrix(p: &Params<'_, '_>, k_len: usize, same_pixels: bool, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let outs = p.out_shape;
    let w_row = kh * kw * i_full;
    let n_out = outs.c;
    let n_pos = outs.h * outs.w;
    if n_pos == 0 || n_out == 0 {
        return;
    }
    let zp = p.zp;
    let win_len = if same_pixels { 0 } else { k_len };
    let mut win0_buf = [const { MaybeUninit::<i8>::uninit() }; WIN];
    let mut win1_buf = [const { MaybeUninit::<i8>::uninit() }; WIN];
    let win0 = prefix(&mut win0_buf, win_len, zp as i8);
    let win1 = prefix(&mut win1_buf, win_len, zp as i8);
    let mut sumw = [0i32; BLK];
    let mut quads = [mve::Quad::default(); BLK / 4];
    // The sums of the two positions: `s[..BLK]` and `s[BLK..]`.
    let mut s = [0i32; 2 * BLK];
    let st = &p.stage;
    let mut c0 = 0;
    while c0 < n_out {
        let nc = BLK.min(n_out - c0);
        let rows = &p.weights[c0 * w_row..][..(nc - 1) * w_row + k_len];
        let row = |o: usize| &rows[o * w_row..][..k_len];
        // Row sums, the zero point folded into the bias, the prepared requantization.
        let mut fast = true;
        for (o, s) in sumw[..nc].iter_mut().enumerate() {
            *s = mve::sum_i8(row(o), k_len);
            let q = p.chan.get(c0 + o);
            match Requant::fast(q) {
                Some(r) => quads[o / 4].set(o % 4, &r, q.0.wrapping_sub(zp.wrapping_mul(*s))),
                None => fast = false,
            }
        }
        let mut q0 = 0;
        while q0 < n_pos {
            let two = q0 + 1 < n_pos;
            let x0 = operand(p, same_pixels, k_len, input, q0, win0);
            let x1 = if two {
                operand(p, same_pixels, k_len, input, q0 + 1, win1)
            } else {
                x0
            };
            let mut o = 0;
            if nc >= 2 {
                // Every full row pair in one call; an odd last channel below.
                let pairs = nc / 2;
                if k_len <= mve::LANES {
                    mve::dot_2x2_short(x0, x1, rows, w_row, k_len, pairs, &mut s);
                } else {
                    mve::dot_2x2_rows(x0, x1, rows, w_row, k_len, pairs, &mut s);
                }
                o = 2 * pairs;
            }
            while o < nc {
                let o1 = (o + 1).min(nc - 1);
                let [a00, a01, a10, a11] = mve::dot_2x2(x0, x1, row(o), row(o1), k_len);
                s[o] = a00;
                s[BLK + o] = a01;
                s[o1] = a10;
                s[BLK + o1] = a11;
                o += 2;
            }
            let at = |q: usize| q * n_out + c0..q * n_out + c0 + nc;
            let npos = if two { 2 } else { 1 };
            for (k, s) in s.chunks_exact(BLK).take(npos).enumerate() {
                let out = &mut output[at(q0 + k)];
                if fast {
                    mve::requant_store(s, &quads, out, st.zero_point, st.act_min, st.act_max);
                } else {
                    // The general path: channel by channel, the zero point's term taken out.
                    for (j, v) in out.iter_mut().enumerate() {
                        let acc = s[j].wrapping_sub(zp.wrapping_mul(sumw[j]));
                        *v = st.finish(requantize(acc, p.chan.get(c0 + j)));
                    }
                }
            }
            q0 += 2;
        }
        c0 += nc;
    }
}

/// Depthwise with a channel multiplier of 1, any kernel of at most [`DW_TAPS`] taps, stride and
/// padding, no dilation: per block of [`DW_CH`] channels the weights are transposed once into
/// `[tap][channel]` (zero past the last channel) and the requantization prepared, then per
/// output position the window, clipped to the input, runs through [`mve::dw_sums16`] (five
/// instructions per four MACs) and [`mve::requant_store`]. A window whose sixteen-channel
/// reads would pass the end of the input (the last pixels' last block, when the channels are
/// not a multiple of 16) is summed in Rust.
#[inline(never)]
fn depthwise(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, _] = p.w_shape;
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let [sy, sx] = geo.stride;
    let [pad_t, pad_l] = geo.pad;
    let c = ins.c;
    let taps_n = kh * kw;
    let st = &p.stage;
    let mut wt = [0i8; DW_TAPS * DW_CH];
    let mut quads = [mve::Quad::default(); DW_CH / 4];
    let mut sums = [0i32; DW_CH];
    let mut c0 = 0;
    while c0 < c {
        let nb = DW_CH.min(c - c0);
        for (t, row) in wt.chunks_exact_mut(DW_CH).take(taps_n).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if j < nb {
                    p.weights[(c0 + j) * taps_n + t]
                } else {
                    0
                };
            }
        }
        let mut fast = true;
        for j in 0..nb {
            let q = p.chan.get(c0 + j);
            match Requant::fast(q) {
                Some(r) => quads[j / 4].set(j % 4, &r, q.0),
                None => fast = false,
            }
        }
        for oy in 0..outs.h {
            let y0 = oy * sy;
            let ky_r = taps(y0, pad_t, 1, kh, ins.h);
            for ox in 0..outs.w {
                let x0 = ox * sx;
                let kx_r = taps(x0, pad_l, 1, kw, ins.w);
                if ky_r.is_empty() || kx_r.is_empty() {
                    sums.fill(0);
                } else {
                    let (iy, ix) = (y0 + ky_r.start - pad_t, x0 + kx_r.start - pad_l);
                    let base = (iy * ins.w + ix) * c + c0;
                    let (nky, nkx) = (ky_r.len(), kx_r.len());
                    let end = base + ((nky - 1) * ins.w + (nkx - 1)) * c + DW_CH;
                    if end <= input.len() {
                        let w = &wt[(ky_r.start * kw + kx_r.start) * DW_CH..];
                        mve::dw_sums16(
                            &input[base..],
                            c,
                            ins.w * c,
                            w,
                            kw * DW_CH,
                            nky,
                            nkx,
                            p.zp,
                            &mut sums,
                        );
                    } else {
                        for (j, s) in sums.iter_mut().enumerate().take(nb) {
                            let mut acc = 0i32;
                            for ky in ky_r.clone() {
                                for kx in kx_r.clone() {
                                    let (dy, dx) = (ky - ky_r.start, kx - kx_r.start);
                                    let x = input[base + (dy * ins.w + dx) * c + j] as i32;
                                    let w = wt[(ky * kw + kx) * DW_CH + j] as i32;
                                    acc = acc.wrapping_add((x - p.zp) * w);
                                }
                            }
                            *s = acc;
                        }
                    }
                }
                let out = &mut output[(oy * outs.w + ox) * c + c0..][..nb];
                if fast {
                    mve::requant_store(&sums, &quads, out, st.zero_point, st.act_min, st.act_max);
                } else {
                    for (j, v) in out.iter_mut().enumerate() {
                        *v = st.finish(requantize(sums[j], p.chan.get(c0 + j)));
                    }
                }
            }
        }
        c0 += nb;
    }
}
