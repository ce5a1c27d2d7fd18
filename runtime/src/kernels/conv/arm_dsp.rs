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
//! Paths, by shape:
//! - one group with a dot product of at most [`COL_LEN`] values (pointwise as a matrix
//!   product, `kxk` through im2col): [`matrix`], whose inner loops are one hand-scheduled
//!   `asm!` block ([`dsp::dot_2x2_rows`]: 16 instructions per 16 MACs in the loop body), and
//!   whose requantization is prepared once per block of channels ([`Requant`]);
//! - depthwise 3x3 (one input channel per group, no dilation), and 3x3 convolutions of a
//!   one-channel input (a depthwise convolution with one group): per channel over a 16-bit plane
//!   with explicit padding ([`depthwise3x3_planes`]), or, for inputs wider than its buffer,
//!   four channels per step ([`depthwise3x3`]);
//! - everything else goes to the portable variant.
//!
//! Stack: the matrix path about 4 KiB (its widened columns, byte window, sums and prepared
//! requantization), the depthwise plane path about 4 KiB (plane and sums).

use core::mem::MaybeUninit;

use super::portable;
use crate::kernels::common::{prefix, taps};
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

    /// A 16-bit multiply-accumulate instruction `insn r, a, b, acc` as a function.
    macro_rules! mac16 {
        ($(#[$doc:meta])* $name:ident, $insn:literal) => {
            $(#[$doc])*
            #[inline(always)]
            pub(crate) fn $name(a: u32, b: u32, acc: i32) -> i32 {
                let r: i32;
                // SAFETY: one instruction that reads three registers and writes one (and the
                // sticky Q flag, which no code here reads): pure register arithmetic, no
                // memory, no stack.
                unsafe {
                    asm!(concat!($insn, " {r}, {a}, {b}, {c}"), r = lateout(reg) r,
                         a = in(reg) a, b = in(reg) b, c = in(reg) acc,
                         options(pure, nomem, nostack));
                }
                r
            }
        };
    }

    mac16!(
        /// `acc + a.lo * b.lo + a.hi * b.hi` (signed 16-bit lanes), modulo 2^32.
        smlad, "smlad"
    );
    mac16!(
        /// `acc + a.lo * b.lo` (signed 16-bit), modulo 2^32.
        smlabb, "smlabb"
    );
    mac16!(
        /// `acc + a.lo * b.hi` (signed 16-bit), modulo 2^32.
        smlabt, "smlabt"
    );
    mac16!(
        /// `acc + a.hi * b.hi` (signed 16-bit), modulo 2^32.
        smlatt, "smlatt"
    );

    /// `SXTAB16 r, off, x{rotation}` as a function.
    macro_rules! extend16 {
        ($(#[$doc:meta])* $name:ident, $rotation:literal) => {
            $(#[$doc])*
            #[inline(always)]
            pub(crate) fn $name(off: u32, x: u32) -> u32 {
                let r: u32;
                // SAFETY: pure register arithmetic, no memory, no stack, flags untouched.
                unsafe {
                    asm!(concat!("sxtab16 {r}, {o}, {x}", $rotation), r = lateout(reg) r,
                         o = in(reg) off, x = in(reg) x,
                         options(pure, nomem, nostack, preserves_flags));
                }
                r
            }
        };
    }

    extend16!(
        /// `off` plus bytes 0 and 2 of `x` sign-extended, per 16-bit lane (modulo 2^16).
        sxtab16, ""
    );
    extend16!(
        /// `off` plus bytes 1 and 3 of `x` sign-extended, per 16-bit lane (modulo 2^16).
        sxtab16_ror8, ", ror #8"
    );

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

    /// `multiply_by_quantized_multiplier(acc + bias, mult, shift)`, bit for bit: through
    /// [`Requant`] when the shift takes its 32-bit path, else the reference function.
    #[inline(always)]
    pub(crate) fn requantize(acc: i32, q: (i32, i32, i32)) -> i32 {
        match Requant::fast(q) {
            Some(r) => r.apply(acc),
            None => multiply_by_quantized_multiplier(acc.wrapping_add(q.0), q.1, q.2),
        }
    }

    /// One channel's requantization in its 32-bit form, `((x + bias) * mult >> 32 + round)
    /// >> r`, for right shifts of at least one (`shift <= -2` in the `(multiplier, shift)`
    /// convention, i.e. `total = 31 - shift >= 33`). With `P = x * mult` exact,
    /// `floor((P + 2^(total-1)) / 2^total) = floor((floor(P / 2^32) + 2^(r-1)) / 2^r)` for
    /// `r = total - 32 >= 1` (nested floors of divisions by positive integers compose, and
    /// `2^(total-1) / 2^32 = 2^(r-1)` is an integer). `floor(P / 2^32)` is the high word of the
    /// product (`SMULL`), at most 2^30 in magnitude, so adding `round = 2^(r-1) <= 2^29`
    /// cannot overflow and the result needs no saturation.
    #[derive(Clone, Copy, Default)]
    #[repr(C)]
    pub(crate) struct Requant {
        pub(crate) bias: i32,
        pub(crate) mult: i32,
        pub(crate) round: i32,
        pub(crate) r: u32,
    }

    impl Requant {
        /// The 32-bit form of `(bias, mult, shift)`, or `None` when the shift needs the
        /// general path.
        #[inline(always)]
        pub(crate) fn fast((bias, mult, shift): (i32, i32, i32)) -> Option<Self> {
            if shift > -2 {
                return None;
            }
            // total = 31 - max(shift, -31) >= 33, r = total - 32 in 1..=30.
            let r = (-1 - shift.max(-31)) as u32;
            Some(Requant {
                bias,
                mult,
                round: 1 << (r - 1),
                r,
            })
        }

        /// Bit for bit `multiply_by_quantized_multiplier(acc + bias, mult, shift)` for the
        /// channel it was made from.
        #[inline(always)]
        pub(crate) fn apply(&self, acc: i32) -> i32 {
            let x = acc.wrapping_add(self.bias);
            let hi = ((x as i64 * self.mult as i64) >> 32) as i32;
            (hi + self.round) >> self.r
        }
    }

    /// One group (four values of the dot product) of [`dot_2x2_rows`]: the two weight words are
    /// loaded (unaligned `LDR`, which ARMv7-M performs in hardware while `CCR.UNALIGN_TRP` is
    /// clear, its reset value) and widened to `(w0, w2)`, `(w1, w3)` pairs, then each
    /// position's two widened words (`LDRD` from the word-aligned buffer) meet both rows.
    macro_rules! group_2x2 {
        () => {
            concat!(
                "ldr {wa}, [{w0}], #4\n",
                "ldr {wb}, [{w1}], #4\n",
                "sxtb16 {wah}, {wa}, ror #8\n",
                "sxtb16 {wa}, {wa}\n",
                "sxtb16 {wbh}, {wb}, ror #8\n",
                "sxtb16 {wb}, {wb}\n",
                "ldrd {c0}, r7, [{col}], #8\n",
                "smlad {a0}, {wa}, {c0}, {a0}\n",
                "smlad {a0}, {wah}, r7, {a0}\n",
                "smlad {a2}, {wb}, {c0}, {a2}\n",
                "smlad {a2}, {wbh}, r7, {a2}\n",
                "ldrd {c0}, r7, [{col}], #8\n",
                "smlad {a1}, {wa}, {c0}, {a1}\n",
                "smlad {a1}, {wah}, r7, {a1}\n",
                "smlad {a3}, {wb}, {c0}, {a3}\n",
                "smlad {a3}, {wbh}, r7, {a3}\n",
            )
        };
    }

    /// Row pairs of a weight matrix against two widened positions: for `j` in
    /// `0..out.len()`, `out[j] = [r0 q0, r0 q1, r1 q0, r1 q1]` with rows
    /// `r0 = first + 2j`, `r1 = second + 2j` (each `w_row` bytes apart in `rows`, the first
    /// `4 * col.len()` values of each) and positions `q0`, `q1` widened into `col` (per group
    /// of four values `[q0 (x0, x2), q0 (x1, x3), q1 (x0, x2), q1 (x1, x3)]`), wrapping sums.
    ///
    /// One hand-scheduled loop over the row pairs and, inside, over the groups (four per
    /// iteration, after `n % 4` single ones): LLVM's allocation of the same code in Rust
    /// spilled two accumulators per group (27 instructions where 16 do), and a call per row
    /// pair spilled every live value around it. The groups need 14 registers, one more than
    /// `asm!` operands can have on Thumb (r7 is the frame pointer), so r7 is saved on the
    /// stack, used as the second `LDRD` target and restored before the block ends; what the
    /// pair loop needs besides (the buffer's start, the group count, the pairs left, where to
    /// store, the step to the next pair) lives in a small array in memory whose address is
    /// pushed on the stack too.
    #[inline(always)]
    pub(crate) fn dot_2x2_rows(
        col: &[[u32; 4]],
        rows: &[i8],
        w_row: usize,
        first: usize,
        second: usize,
        out: &mut [[i32; 4]],
    ) {
        let n = col.len();
        let pairs = out.len();
        let last = first.max(second) + 2 * (pairs.max(1) - 1);
        assert!(
            n > 0
                && pairs > 0
                && 4 * n <= w_row
                && last
                    .checked_add(1)
                    .and_then(|r| r.checked_mul(w_row))
                    .is_some_and(|end| end <= rows.len())
        );
        // [col, groups, pairs left, store pointer, step from a row's end to the next pair's]
        let mut ctx: [u32; 5] = [
            col.as_ptr() as u32,
            n as u32,
            pairs as u32,
            out.as_mut_ptr() as u32,
            (2 * w_row - 4 * n) as u32,
        ];
        let w0 = rows[first * w_row..].as_ptr();
        let w1 = rows[second * w_row..].as_ptr();
        if n <= SHORT_GROUPS {
            // SAFETY: the bounds asserted above, which are what `dot_2x2_short` requires.
            unsafe { dot_2x2_short(col, w0, w1, w_row, out) };
            return;
        }
        // SAFETY: the block reads, per pair j < pairs, `16 * n` bytes of `col` (exactly
        // `col`, 4-byte aligned elements as `LDRD` needs) and `4 * n` bytes from rows
        // `first + 2j` and `second + 2j` (the pointers start at those rows and step by
        // `2 * w_row` per pair; the assert bounds the last row read, `last`, inside `rows`, and
        // `4 * n <= w_row`); byte loads need no alignment (see `group_2x2`). It writes the
        // four accumulators of pair j to `out[j]` (`STRD`, 4-byte aligned), the `ctx` array it
        // was given, and two words pushed below the stack pointer (not `nostack`: r7 and the
        // address of `ctx`); it restores r7 and sp before it ends. Every other register it changes is an output operand;
        // flags are not declared preserved. All arithmetic stays in 32 bits, as do the
        // pointers on this target.
        unsafe {
            core::arch::asm!(
                "push {{r7}}",
                "push {{{c0}}}",
                "2:",
                "ldr {a0}, [sp]",
                "ldr {col}, [{a0}]",
                "ldr {cnt}, [{a0}, #4]",
                "mov {a0}, #0",
                "mov {a1}, #0",
                "mov {a2}, #0",
                "mov {a3}, #0",
                // `n % 4` single groups, then four per iteration.
                "ands {cnt}, {cnt}, #3",
                "beq 3f",
                "6:",
                group_2x2!(),
                "subs {cnt}, {cnt}, #1",
                "bne 6b",
                "3:",
                "ldr {wa}, [sp]",
                "ldr {cnt}, [{wa}, #4]",
                "lsrs {cnt}, {cnt}, #2",
                "beq 5f",
                "4:",
                group_2x2!(),
                group_2x2!(),
                group_2x2!(),
                group_2x2!(),
                "subs {cnt}, {cnt}, #1",
                "bne 4b",
                "5:",
                "ldr {wa}, [sp]",
                "ldr {col}, [{wa}, #12]",
                "strd {a0}, {a1}, [{col}], #8",
                "strd {a2}, {a3}, [{col}], #8",
                "str {col}, [{wa}, #12]",
                "ldr {cnt}, [{wa}, #16]",
                "add {w0}, {w0}, {cnt}",
                "add {w1}, {w1}, {cnt}",
                "ldr {cnt}, [{wa}, #8]",
                "subs {cnt}, {cnt}, #1",
                "str {cnt}, [{wa}, #8]",
                "bne 2b",
                "add sp, sp, #4",
                "pop {{r7}}",
                w0 = inout(reg) w0 => _,
                w1 = inout(reg) w1 => _,
                col = out(reg) _,
                cnt = out(reg) _,
                a0 = out(reg) _,
                a1 = out(reg) _,
                a2 = out(reg) _,
                a3 = out(reg) _,
                wa = out(reg) _,
                wah = out(reg) _,
                wb = out(reg) _,
                wbh = out(reg) _,
                // Holds the address of `ctx` until it is pushed, then the first `LDRD` target.
                c0 = inout(reg) ctx.as_mut_ptr() => _,
            );
        }
    }

    /// Longest dot product, in groups of four values, of [`dot_2x2_short`].
    pub(crate) const SHORT_GROUPS: usize = 4;

    /// The first group of [`dot_2x2_short`]'s unrolled body: as [`group_2x2`], but `SMUAD`
    /// starts each accumulator (no zeroing) and the buffer is read at fixed offsets.
    macro_rules! group_2x2_first {
        () => {
            concat!(
                "ldr {wa}, [{w0}], #4\n",
                "ldr {wb}, [{w1}], #4\n",
                "sxtb16 {wah}, {wa}, ror #8\n",
                "sxtb16 {wa}, {wa}\n",
                "sxtb16 {wbh}, {wb}, ror #8\n",
                "sxtb16 {wb}, {wb}\n",
                "ldrd {c0}, r7, [{col}]\n",
                "smuad {a0}, {wa}, {c0}\n",
                "smlad {a0}, {wah}, r7, {a0}\n",
                "smuad {a2}, {wb}, {c0}\n",
                "smlad {a2}, {wbh}, r7, {a2}\n",
                "ldrd {c0}, r7, [{col}, #8]\n",
                "smuad {a1}, {wa}, {c0}\n",
                "smlad {a1}, {wah}, r7, {a1}\n",
                "smuad {a3}, {wb}, {c0}\n",
                "smlad {a3}, {wbh}, r7, {a3}\n",
            )
        };
    }

    /// A later group of [`dot_2x2_short`]'s body, its two positions' words at byte offsets
    /// `$p0` and `$p1` of the buffer.
    macro_rules! group_2x2_at {
        ($p0:literal, $p1:literal) => {
            concat!(
                "ldr {wa}, [{w0}], #4\n",
                "ldr {wb}, [{w1}], #4\n",
                "sxtb16 {wah}, {wa}, ror #8\n",
                "sxtb16 {wa}, {wa}\n",
                "sxtb16 {wbh}, {wb}, ror #8\n",
                "sxtb16 {wb}, {wb}\n",
                "ldrd {c0}, r7, [{col}, #",
                $p0,
                "]\n",
                "smlad {a0}, {wa}, {c0}, {a0}\n",
                "smlad {a0}, {wah}, r7, {a0}\n",
                "smlad {a2}, {wb}, {c0}, {a2}\n",
                "smlad {a2}, {wbh}, r7, {a2}\n",
                "ldrd {c0}, r7, [{col}, #",
                $p1,
                "]\n",
                "smlad {a1}, {wa}, {c0}, {a1}\n",
                "smlad {a1}, {wah}, r7, {a1}\n",
                "smlad {a3}, {wb}, {c0}, {a3}\n",
                "smlad {a3}, {wbh}, r7, {a3}\n",
            )
        };
    }

    /// [`dot_2x2_rows`] for dot products of at most [`SHORT_GROUPS`] groups (pointwise from 4-16
    /// channels, the layers of narrow configurations): the groups are unrolled, the buffer
    /// read at fixed offsets and each accumulator started by `SMUAD`, so a row pair costs its
    /// `16 * n` instructions and 8 more (store, the step to the next pair, the loop test)
    /// where the general loop spends about 29 around them. The row pointers run from `w0`,
    /// `w1` by `2 * w_row` per pair until `w0` has passed `out.len()` pairs.
    ///
    /// # Safety
    ///
    /// `1 <= col.len() <= SHORT_GROUPS`, `4 * col.len() <= w_row`, `out` not empty, and for
    /// every `j < out.len()` the `4 * col.len()` bytes at `w0 + 2 * j * w_row` and at
    /// `w1 + 2 * j * w_row` readable.
    #[inline(always)]
    unsafe fn dot_2x2_short(
        col: &[[u32; 4]],
        w0: *const i8,
        w1: *const i8,
        w_row: usize,
        out: &mut [[i32; 4]],
    ) {
        let n = col.len();
        let step = 2 * w_row - 4 * n;
        // Compared as an address, never dereferenced: where `w0` is after the last pair.
        let end = (w0 as usize).wrapping_add(out.len() * 2 * w_row);
        macro_rules! short_loop {
            ($($group:ident!($($arg:literal),*)),* $(,)?) => {
                // SAFETY: per pair j < out.len() the body reads `16 * n` bytes of `col` at
                // fixed offsets below `16 * n` (4-byte aligned elements, as `LDRD` needs) and
                // `4 * n` bytes at `w0`, `w1` (post-incremented, then stepped to the next
                // pair's rows by `step`: the caller's bounds), byte loads need no alignment
                // (see `group_2x2`); it writes pair j's four sums to `out[j]` (`STRD`, 4-byte
                // aligned), updates the store pointer it pushed and restores r7 and sp before
                // it ends. `w0` advances by exactly `2 * w_row` per pair, so it meets `end`
                // after `out.len() >= 1` pairs. Every other changed register is an output
                // operand; flags are not declared preserved.
                unsafe {
                    core::arch::asm!(
                        "push {{r7}}",
                        "push {{{wah}}}",
                        "push {{{wa}}}",
                        "2:",
                        $($group!($($arg),*),)*
                        "ldrd {wa}, {wah}, [sp]",
                        "strd {a0}, {a1}, [{wa}], #8",
                        "strd {a2}, {a3}, [{wa}], #8",
                        "str {wa}, [sp]",
                        "add {w0}, {w0}, {wah}",
                        "add {w1}, {w1}, {wah}",
                        "cmp {w0}, {end}",
                        "bne 2b",
                        "add sp, sp, #8",
                        "pop {{r7}}",
                        w0 = inout(reg) w0 => _,
                        w1 = inout(reg) w1 => _,
                        col = in(reg) col.as_ptr(),
                        end = in(reg) end,
                        a0 = out(reg) _,
                        a1 = out(reg) _,
                        a2 = out(reg) _,
                        a3 = out(reg) _,
                        wa = inout(reg) out.as_mut_ptr() => _,
                        wah = inout(reg) step => _,
                        wb = out(reg) _,
                        wbh = out(reg) _,
                        c0 = out(reg) _,
                    )
                }
            };
        }
        match n {
            1 => short_loop!(group_2x2_first!()),
            2 => short_loop!(group_2x2_first!(), group_2x2_at!("16", "24")),
            3 => short_loop!(
                group_2x2_first!(),
                group_2x2_at!("16", "24"),
                group_2x2_at!("32", "40"),
            ),
            // `n == 4` (`1 <= n <= SHORT_GROUPS`).
            _ => short_loop!(
                group_2x2_first!(),
                group_2x2_at!("16", "24"),
                group_2x2_at!("32", "40"),
                group_2x2_at!("48", "56"),
            ),
        }
    }

    /// Depthwise 3x3 sums over a plane of 16-bit values (rows of `pw` values, 2 bytes each,
    /// the plane 4-byte aligned): for output row `r < rows` and column `x < out_w`, with
    /// `u = x * STEP` bytes into plane row `r * sy`,
    /// `sums[r * out_w + x] = (x0, x1) . (w[0]) + x2 * w[3].lo` over plane row `r * sy`, then
    /// `(w[1])` and `w[3].hi` over the next row, `(w[2])` and `w[4].lo` over the one after
    /// (`w[0..3]` the packed first two columns of the kernel rows, `w[3]` the third column of
    /// rows 0 and 1, `w[4]` of row 2). `STEP` is the stride in bytes (2 or 4: stride 1 or 2);
    /// `out_w >= 2`.
    ///
    /// One `asm!` loop over pairs of outputs, 21 instructions per pair: per kernel row one
    /// `LDRD` of four values and six multiply-accumulates (stride 1: the second output's pair
    /// `(x1, x2)` is one `PKHBT` of the two loaded words, multiplied exchanged by `SMLADX`;
    /// stride 2: one more `LDR` of `(x4, x5)` instead), one `STRD` of both sums and the loop
    /// test; an odd row's last output takes 10 more. 14 registers: r7 is saved on the stack
    /// and used by name (see `dot_2x2_rows`). The per-row values (rows left, the step of the
    /// read pointers to the next row, the row's length in bytes of sums) live in a small array
    /// whose address is pushed on the stack.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn dw3x3_sums<const STEP: usize>(
        plane: &[u8],
        pw: usize,
        sy: usize,
        out_w: usize,
        rows: usize,
        w: [u32; 5],
        sums: &mut [i32],
    ) {
        const { assert!(STEP == 2 || STEP == 4) };
        let pairs = out_w / 2;
        // The last bytes read: plane row `(rows - 1) * sy + 2`, 8 bytes from byte
        // `(out_w - 1) * STEP` (an odd row's last output, or the last pair's first), and for
        // stride 2 four more after a pair's eight.
        assert!(
            rows > 0
                && out_w >= 2
                && sums.len() >= rows * out_w
                && (out_w - 1) * STEP + 8 <= 2 * pw
                && 2 * STEP * pairs + 4 <= 2 * pw
                && ((rows - 1) * sy + 3) * 2 * pw <= plane.len()
                && (plane.as_ptr() as usize) % 4 == 0
                && pw % 2 == 0
        );
        let row_adv = 2 * pw * sy - pairs * 2 * STEP;
        // [rows left, read step to the next row, row length in bytes of sums]
        let mut ctx: [u32; 3] = [rows as u32, row_adv as u32, (4 * out_w) as u32];
        let p = plane.as_ptr();
        macro_rules! sums_loop {
            ([$($body:literal),* $(,)?], [$($tail:literal),* $(,)?]) => {
                core::arch::asm!(
                    "push {{r7}}",
                    "push {{{a}}}",
                    "2:",
                    $($body,)*
                    "strd {acc0}, {acc1}, [{sums}], #8",
                    "cmp {sums}, {end}",
                    "bne 2b",
                    $($tail,)*
                    "ldr {a}, [sp]",
                    "ldr {acc0}, [{a}, #4]",
                    "add {p0}, {p0}, {acc0}",
                    "add {p1}, {p1}, {acc0}",
                    "add {p2}, {p2}, {acc0}",
                    "ldr {acc0}, [{a}, #8]",
                    "add {end}, {end}, {acc0}",
                    "ldr {acc0}, [{a}]",
                    "subs {acc0}, {acc0}, #1",
                    "str {acc0}, [{a}]",
                    "bne 2b",
                    "add sp, sp, #4",
                    "pop {{r7}}",
                    p0 = inout(reg) p => _,
                    p1 = inout(reg) p.wrapping_add(2 * pw) => _,
                    p2 = inout(reg) p.wrapping_add(4 * pw) => _,
                    wa = in(reg) w[0],
                    wb = in(reg) w[1],
                    wc = in(reg) w[2],
                    zab = in(reg) w[3],
                    zc = in(reg) w[4],
                    sums = inout(reg) sums.as_mut_ptr() => _,
                    end = inout(reg) sums.as_mut_ptr().wrapping_add(2 * pairs) => _,
                    acc0 = out(reg) _,
                    acc1 = out(reg) _,
                    // Holds the address of `ctx` until it is pushed, then loaded values.
                    a = inout(reg) ctx.as_mut_ptr() => _,
                )
            };
        }
        // `with_body!(stride, parity)` expands the loop with that body and tail.
        macro_rules! with_body {
            (2, $odd:ident) => {
                with_tail!(
                    [
                        "ldrd {a}, r7, [{p0}], #4",
                        "smuad {acc0}, {a}, {wa}",
                        "smlabb {acc0}, r7, {zab}, {acc0}",
                        "pkhbt {a}, r7, {a}",
                        "smuadx {acc1}, {a}, {wa}",
                        "smlatb {acc1}, r7, {zab}, {acc1}",
                        "ldrd {a}, r7, [{p1}], #4",
                        "smlad {acc0}, {a}, {wb}, {acc0}",
                        "smlabt {acc0}, r7, {zab}, {acc0}",
                        "pkhbt {a}, r7, {a}",
                        "smladx {acc1}, {a}, {wb}, {acc1}",
                        "smlatt {acc1}, r7, {zab}, {acc1}",
                        "ldrd {a}, r7, [{p2}], #4",
                        "smlad {acc0}, {a}, {wc}, {acc0}",
                        "smlabb {acc0}, r7, {zc}, {acc0}",
                        "pkhbt {a}, r7, {a}",
                        "smladx {acc1}, {a}, {wc}, {acc1}",
                        "smlatb {acc1}, r7, {zc}, {acc1}",
                    ],
                    $odd
                )
            };
            (4, $odd:ident) => {
                with_tail!(
                    [
                        "ldrd {a}, r7, [{p0}], #8",
                        "smuad {acc0}, {a}, {wa}",
                        "smlabb {acc0}, r7, {zab}, {acc0}",
                        "smuad {acc1}, r7, {wa}",
                        "ldr {a}, [{p0}]",
                        "smlabb {acc1}, {a}, {zab}, {acc1}",
                        "ldrd {a}, r7, [{p1}], #8",
                        "smlad {acc0}, {a}, {wb}, {acc0}",
                        "smlabt {acc0}, r7, {zab}, {acc0}",
                        "smlad {acc1}, r7, {wb}, {acc1}",
                        "ldr {a}, [{p1}]",
                        "smlabt {acc1}, {a}, {zab}, {acc1}",
                        "ldrd {a}, r7, [{p2}], #8",
                        "smlad {acc0}, {a}, {wc}, {acc0}",
                        "smlabb {acc0}, r7, {zc}, {acc0}",
                        "smlad {acc1}, r7, {wc}, {acc1}",
                        "ldr {a}, [{p2}]",
                        "smlabb {acc1}, {a}, {zc}, {acc1}",
                    ],
                    $odd
                )
            };
        }
        // An odd row's last output, at the read pointers where the pairs left them (they are
        // not advanced: the row step accounts for it).
        macro_rules! with_tail {
            ([$($body:literal),* $(,)?], even) => {
                sums_loop!([$($body),*], [])
            };
            ([$($body:literal),* $(,)?], odd) => {
                sums_loop!([$($body),*], [
                    "ldrd {a}, r7, [{p0}]",
                    "smuad {acc0}, {a}, {wa}",
                    "smlabb {acc0}, r7, {zab}, {acc0}",
                    "ldrd {a}, r7, [{p1}]",
                    "smlad {acc0}, {a}, {wb}, {acc0}",
                    "smlabt {acc0}, r7, {zab}, {acc0}",
                    "ldrd {a}, r7, [{p2}]",
                    "smlad {acc0}, {a}, {wc}, {acc0}",
                    "smlabb {acc0}, r7, {zc}, {acc0}",
                    "str {acc0}, [{sums}], #4",
                ])
            };
        }
        // SAFETY: for row `r` the block reads 8 bytes (`LDRD`, 4-byte aligned: the plane is,
        // `2 * pw` is a multiple of 4 and so is every offset `2 * STEP * k`) at
        // `(r * sy + i) * 2 * pw + 2 * STEP * k`, `i < 3`, for each pair `k < pairs` (and for
        // stride 2 four more bytes after them, `LDR`) and, for an odd `out_w`, at
        // `2 * STEP * pairs = (out_w - 1) * STEP`: the largest end is `((rows - 1) * sy + 2) *
        // 2 * pw` plus at most `2 * pw` (asserted), within `plane.len()` (asserted). It writes
        // `out_w` words per row, rows `out_w` words apart (`STRD`/`STR`, `sums` is 4-byte
        // aligned): `rows * out_w <= sums.len()` words; the `ctx` array; and two words pushed
        // below the stack pointer (not `nostack`: r7 and the address of `ctx`), restoring r7
        // and sp before it ends. Every other register it changes is an output operand; the
        // flags are not declared preserved. Arithmetic is 32-bit, as are pointers on this
        // target.
        unsafe {
            match (STEP == 2, out_w % 2 == 1) {
                (true, false) => with_body!(2, even),
                (true, true) => with_body!(2, odd),
                (false, false) => with_body!(4, even),
                (false, true) => with_body!(4, odd),
            }
        }
    }

    /// Requantizes `sums` with one channel's prepared parameters and stores them `stride`
    /// bytes apart from `out[0]`: bit for bit `stage.finish(q.apply(acc))` ([`Requant::apply`]): `x = acc + bias` (wrapping), `(round << 32 + x * mult) >> 32`
    /// is `SMMLA` (exactly `round + floor(x * mult / 2^32)`, at most 2^30 + 2^29 in
    /// magnitude), the shift by `r >= 1` leaves at most 2^29, so adding the zero point cannot
    /// overflow and `saturating_add` never saturates; then the clamp to `lo..=hi` (one `SSAT`
    /// when that is all of int8). 10 or 15 instructions per output where the Rust loop took 19.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn requant_store(
        sums: &[i32],
        out: &mut [i8],
        stride: usize,
        &Requant {
            bias,
            mult,
            round,
            r,
        }: &Requant,
        zp: i32,
        lo: i8,
        hi: i8,
    ) {
        let n = sums.len();
        assert!(n > 0 && stride > 0 && (n - 1) * stride < out.len() && (1..=30).contains(&r));
        let s = sums.as_ptr();
        // One loop; the clamp to `lo..=hi` is one `SSAT` when that is all of int8.
        macro_rules! requant_loop {
            ([$($clamp:literal),*] $(, $name:ident = $value:expr)*) => {
                core::arch::asm!(
                    "2:",
                    "ldr {t}, [{s}], #4",
                    "add {t}, {t}, {bias}",
                    "smmla {t}, {t}, {mult}, {round}",
                    "asr {t}, {t}, {r}",
                    "add {t}, {t}, {zp}",
                    $($clamp,)*
                    "strb {t}, [{o}]",
                    "add {o}, {o}, {stride}",
                    "cmp {s}, {end}",
                    "bne 2b",
                    s = inout(reg) s => _,
                    end = in(reg) s.add(n),
                    o = inout(reg) out.as_mut_ptr() => _,
                    stride = in(reg) stride,
                    bias = in(reg) bias,
                    mult = in(reg) mult,
                    round = in(reg) round,
                    r = in(reg) r,
                    zp = in(reg) zp,
                    $($name = in(reg) $value,)*
                    t = out(reg) _,
                    options(nostack),
                )
            };
        }
        // SAFETY: reads the `n` words of `sums` (4-byte aligned) and writes the bytes at
        // `out + k * stride` for `k < n`, all inside `out` (asserted); no other memory, no
        // stack. Every changed register is an output operand; the flags are not declared
        // preserved.
        unsafe {
            if lo == i8::MIN && hi == i8::MAX {
                requant_loop!(["ssat {t}, #8, {t}"]);
            } else {
                requant_loop!(
                    [
                        "cmp {t}, {lo}",
                        "it lt",
                        "movlt {t}, {lo}",
                        "cmp {t}, {hi}",
                        "it gt",
                        "movgt {t}, {hi}"
                    ],
                    lo = lo as i32,
                    hi = hi as i32
                );
            }
        }
    }

    /// Requantizes the row-pair sums of two positions (`[r0 q0, r0 q1, r1 q0, r1 q1]` per pair,
    /// so channel `k`'s two sums are words `2k` and `2k + 1`) with channel `k`'s prepared
    /// parameters `cache[k]` and stores channel `k` of position 0 to `out0[k]` and of
    /// position 1 to `out1[k]`, for `k < out0.len()`: bit for bit `stage.finish(q.apply(acc))`,
    /// by the argument of [`requant_store`] (`SMMLA`, the shift, the zero point added without
    /// saturation, the clamp; one `SSAT` when the clamp is all of int8). One loop over the
    /// channels, 14 instructions per output (9 with `SSAT`) where the Rust loop took about 21.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn requant_pairs(
        sums: &[[i32; 4]],
        cache: &[Requant],
        out0: &mut [i8],
        out1: &mut [i8],
        zp: i32,
        lo: i8,
        hi: i8,
    ) {
        let n = out0.len();
        assert!(n > 0 && out1.len() == n && cache.len() >= n && 4 * sums.len() >= 2 * n);
        // Every `Requant` comes from `Requant::fast`, so its shift `r` is in 1..=30, as the
        // argument of `requant_store` needs (not a memory-safety condition: checked there per
        // call, here not per block of channels).
        let end = out0.as_ptr() as u32 + n as u32;
        macro_rules! pairs_loop {
            ([$($clamp:literal),*] $(, $name:ident = $value:expr)*) => {
                core::arch::asm!(
                    "push {{{s0}}}",
                    "2:",
                    "ldrd {bias}, {mult}, [{q}], #8",
                    "ldrd {round}, {r}, [{q}], #8",
                    "ldrd {s0}, {s1}, [{s}], #8",
                    "add {s0}, {s0}, {bias}",
                    "add {s1}, {s1}, {bias}",
                    "smmla {s0}, {s0}, {mult}, {round}",
                    "smmla {s1}, {s1}, {mult}, {round}",
                    "asr {s0}, {s0}, {r}",
                    "asr {s1}, {s1}, {r}",
                    "add {s0}, {s0}, {zp}",
                    "add {s1}, {s1}, {zp}",
                    $($clamp,)*
                    "strb {s0}, [{o0}], #1",
                    "strb {s1}, [{o1}], #1",
                    "ldr {bias}, [sp]",
                    "cmp {o0}, {bias}",
                    "bne 2b",
                    "add sp, sp, #4",
                    q = inout(reg) cache.as_ptr() => _,
                    s = inout(reg) sums.as_ptr() => _,
                    o0 = inout(reg) out0.as_mut_ptr() => _,
                    o1 = inout(reg) out1.as_mut_ptr() => _,
                    s0 = inout(reg) end => _,
                    s1 = out(reg) _,
                    bias = out(reg) _,
                    mult = out(reg) _,
                    round = out(reg) _,
                    r = out(reg) _,
                    zp = in(reg) zp,
                    $($name = in(reg) $value,)*
                )
            };
        }
        // SAFETY: reads the first `2n` words of `sums` (4-byte aligned `LDRD`s, `2n <= 4 *
        // sums.len()`) and the first `n` entries of `cache` (16-byte `repr(C)` records, read as
        // two `LDRD`s each, 4-byte aligned), writes `out0[k]` and `out1[k]` for `k < n` (both
        // of length `n`), and one word pushed below the stack pointer (the end of `out0`,
        // reached after exactly `n >= 1` channels), popped before the block ends. Every
        // changed register is an output operand; flags are not declared preserved.
        unsafe {
            if lo == i8::MIN && hi == i8::MAX {
                pairs_loop!(["ssat {s0}, #8, {s0}", "ssat {s1}, #8, {s1}"]);
            } else {
                pairs_loop!(
                    [
                        "cmp {s0}, {lo}",
                        "it lt",
                        "movlt {s0}, {lo}",
                        "cmp {s0}, {hi}",
                        "it gt",
                        "movgt {s0}, {hi}",
                        "cmp {s1}, {lo}",
                        "it lt",
                        "movlt {s1}, {lo}",
                        "cmp {s1}, {hi}",
                        "it gt",
                        "movgt {s1}, {hi}"
                    ],
                    lo = lo as i32,
                    hi = hi as i32
                );
            }
        }
    }

    /// One group of [`dot_4x1`]: the position's two widened words, then per row one weight
    /// word widened and two `SMLAD`s.
    macro_rules! group_4x1 {
        () => {
            concat!(
                "ldrd {c0}, r7, [{col}], #8\n",
                "ldr {wl}, [{w0}], #4\n",
                "sxtb16 {wh}, {wl}, ror #8\n",
                "sxtb16 {wl}, {wl}\n",
                "smlad {a0}, {wl}, {c0}, {a0}\n",
                "smlad {a0}, {wh}, r7, {a0}\n",
                "ldr {wl}, [{w1}], #4\n",
                "sxtb16 {wh}, {wl}, ror #8\n",
                "sxtb16 {wl}, {wl}\n",
                "smlad {a1}, {wl}, {c0}, {a1}\n",
                "smlad {a1}, {wh}, r7, {a1}\n",
                "ldr {wl}, [{w2}], #4\n",
                "sxtb16 {wh}, {wl}, ror #8\n",
                "sxtb16 {wl}, {wl}\n",
                "smlad {a2}, {wl}, {c0}, {a2}\n",
                "smlad {a2}, {wh}, r7, {a2}\n",
                "ldr {wl}, [{w3}], #4\n",
                "sxtb16 {wh}, {wl}, ror #8\n",
                "sxtb16 {wl}, {wl}\n",
                "smlad {a3}, {wl}, {c0}, {a3}\n",
                "smlad {a3}, {wh}, r7, {a3}\n",
            )
        };
    }

    /// `acc[r] += sum_i w_r[i] * x[i]` for four weight rows of exactly `4 * col.len()` int8
    /// values and one position widened into `col` (per group `[(x0, x2), (x1, x3)]`),
    /// wrapping. One loop in `asm!` for the reasons given at [`dot_2x2_rows`] (the 14th
    /// register is r7, saved and restored the same way).
    #[inline(always)]
    pub(crate) fn dot_4x1(col: &[[u32; 2]], w: [&[i8]; 4], acc: &mut [i32; 4]) {
        let n = col.len();
        assert!(n > 0 && w.iter().all(|r| r.len() == 4 * n));
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        // SAFETY: as for `dot_2x2_rows`: `n >= 1` groups read exactly `col` (8-byte elements,
        // 4-byte aligned for `LDRD`) and exactly the four rows (lengths asserted, byte loads
        // need no alignment); only the pushed r7 is written, and restored with sp.
        unsafe {
            core::arch::asm!(
                "push {{r7}}",
                "lsrs {n}, {n}, #1",
                "bcc 3f",
                group_4x1!(),
                "3:",
                "cmp {n}, #0",
                "beq 4f",
                "2:",
                group_4x1!(),
                group_4x1!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                "pop {{r7}}",
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                col = inout(reg) col.as_ptr() => _,
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                n = inout(reg) n => _,
                wl = out(reg) _,
                wh = out(reg) _,
                c0 = out(reg) _,
            );
        }
        *acc = [a0, a1, a2, a3];
    }
}

use dsp::{
    Requant, lanes_of_neg, pack, requantize, smlabb, smlabt, smlad, smlatt, sxtab16, sxtab16_ror8,
    word,
};

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
    let dw_shape = i_full == 1 && kh == 3 && kw == 3 && geo.dilation == [1, 1];
    // Depthwise 3x3, and a 3x3 convolution of a one-channel input (a first layer), which is a
    // depthwise convolution with one group and a channel multiplier of `out_shape.c`: the
    // plane path (one 9-value dot product per output in 17 instructions, not an im2col of 9
    // values and a matrix tile per position). One call site: a second one changed LLVM's
    // inlining of the whole function and cost the other paths 8-18%.
    let plane_groups = if cin_g == 1 && groups > 1 && dw_shape {
        groups
    } else if groups == 1 && in_shape.c == 1 && dw_shape {
        1
    } else {
        0
    };
    if plane_groups > 0 && depthwise3x3_planes(&p, plane_groups, input, output) {
        return;
    }
    if plane_groups > 1 {
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

/// One group, a dot product of `k_len <= COL_LEN` values: pointwise reads each position's
/// input channels in place, `kxk` gathers the window into a byte buffer in the weights'
/// layout first (`[kh][kw][i_full]`; padding taps and inactive columns at the zero point).
/// Positions go in pairs, output channels in pairs ([`dsp::dot_2x2_rows`]); an odd last
/// position or channel pairs with itself (computed, not stored).
fn matrix(p: &Params<'_, '_>, k_len: usize, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let pointwise = kh == 1 && kw == 1;
    let n_out = outs.c;
    let n_pos = outs.h * outs.w;
    // A `kxk` window whose length is not a multiple of 4 (a first layer's 27 values): when
    // the weights fit [`W_PAD`], their rows are copied with zeros up to the next multiple of
    // 4 and the window's bytes with the zero point (a widened 0), so every value goes
    // through the `asm!` groups and none through the scalar tail loop.
    let k_pad = k_len.next_multiple_of(4);
    let mut wpad_buf = [const { MaybeUninit::<i8>::uninit() }; W_PAD];
    let (rows, w_row, k_len) = if !pointwise && k_pad != k_len && n_out * k_pad <= W_PAD {
        // `kxk` rows are exactly `k_len = kh * kw * i_full` long.
        let padded = prefix(&mut wpad_buf, n_out * k_pad, 0);
        for (d, w) in padded
            .chunks_exact_mut(k_pad)
            .zip(p.weights.chunks_exact(k_len))
        {
            d[..k_len].copy_from_slice(w);
        }
        (&*padded, k_pad, k_pad)
    } else {
        let w_row = kh * kw * i_full;
        (&p.weights[..n_out * w_row], w_row, k_len)
    };
    let groups = k_len / 4;
    let off = lanes_of_neg(p.zp);
    let mut col_buf = [const { MaybeUninit::<[u32; 4]>::uninit() }; COL_GROUPS];
    let col = prefix(&mut col_buf, groups, [0; 4]);
    let mut tails = [[0i32; 3]; 2];
    // The window as bytes; for pointwise, the operand of a position in the padding.
    let mut bytes_buf = [const { MaybeUninit::<i8>::uninit() }; COL_LEN];
    let bytes = prefix(&mut bytes_buf, k_len, p.zp as i8);
    // Gathers position `q`'s operand and widens it into `SLOT`.
    // A pointwise convolution whose output positions are its input positions (stride 1, no
    // padding): position `q` reads input pixel `q`, no window arithmetic per position.
    let same_pixels = pointwise
        && geo.stride == [1, 1]
        && geo.pad == [0, 0]
        && outs.h == ins.h
        && outs.w == ins.w;
    let mut gather = |q: usize, slot: usize, col: &mut [[u32; 4]], tails: &mut [[i32; 3]; 2]| {
        let src = crate::kernels::common::conv_operand(
            geo,
            ins,
            outs,
            p.w_shape,
            p.zp as i8,
            same_pixels,
            k_len,
            input,
            q,
            bytes,
        );
        if slot == 0 {
            widen::<0>(src, off, p.zp, col, &mut tails[0]);
        } else {
            widen::<1>(src, off, p.zp, col, &mut tails[1]);
        }
    };
    let mut cache_buf = [const { MaybeUninit::<Requant>::uninit() }; 2 * PAIR_BLOCK];
    let mut sums_buf = [const { MaybeUninit::<[i32; 4]>::uninit() }; PAIR_BLOCK];
    let sums = prefix(&mut sums_buf, PAIR_BLOCK.min(n_out.div_ceil(2)), [0; 4]);
    // Output channels in blocks of 2 * PAIR_BLOCK; each block's requantization is prepared
    // once and its positions run in pairs.
    let mut c0 = 0;
    while c0 < n_out {
        let nc = (2 * PAIR_BLOCK).min(n_out - c0);
        let cache = prefix(&mut cache_buf, nc, Requant::default());
        let fast = prepare(&p.chan, c0, cache);
        let block = Block {
            rows: &rows[c0 * w_row..],
            w_row,
            k_len,
            c0,
            cache: if fast { Some(cache) } else { None },
        };
        let mut q0 = 0;
        while q0 < n_pos {
            gather(q0, 0, col, &mut tails);
            let at = |q: usize| q * n_out + c0..q * n_out + c0 + nc;
            if q0 + 1 < n_pos {
                gather(q0 + 1, 1, col, &mut tails);
                let (head, rest) = output.split_at_mut((q0 + 1) * n_out);
                let (out0, out1) = (&mut head[at(q0)], &mut rest[at(0)]);
                tiles::<true>(p, &block, col, &tails, sums, out0, out1);
            } else {
                // The last position alone: slot 1 repeats it (computed, not stored).
                gather(q0, 1, col, &mut tails);
                tiles::<false>(p, &block, col, &tails, sums, &mut output[at(q0)], &mut []);
            }
            q0 += 2;
        }
        c0 += nc;
    }
}

/// Fills `out` with the prepared requantization of channels `c0..c0 + out.len()`; false (and
/// `out` unusable) when a channel's shift needs the general path.
fn prepare(chan: &ChannelQuant<'_>, c0: usize, out: &mut [Requant]) -> bool {
    let bytes = &chan.as_bytes()[c0 * ChannelQuant::STRIDE..];
    for (q, b) in out.iter_mut().zip(bytes.chunks_exact(ChannelQuant::STRIDE)) {
        match Requant::fast(ChannelQuant::decode(b)) {
            Some(f) => *q = f,
            None => return false,
        }
    }
    true
}

/// One block of output channels of [`matrix`]: its weight rows (from channel `c0`) and, when
/// every channel takes the fast path, its prepared requantization.
struct Block<'a> {
    rows: &'a [i8],
    w_row: usize,
    k_len: usize,
    c0: usize,
    cache: Option<&'a [Requant]>,
}

/// Bytes of [`matrix`]'s padded copy of short `kxk` weights (1 KiB on the stack).
const W_PAD: usize = 1024;

/// Row pairs run per call of [`dsp::dot_2x2_rows`] (their sums, 512 bytes, on the stack).
const PAIR_BLOCK: usize = 32;

/// One pair of positions (widened into `col` and `tails`) against the block's output
/// channels (`out0.len()` of them), two channels at a time ([`dsp::dot_2x2_rows`]),
/// requantized and stored to `out0` and (when `TWO`) `out1`. An odd last channel runs paired
/// with itself (computed, not stored).
#[inline(always)]
fn tiles<const TWO: bool>(
    p: &Params<'_, '_>,
    blk: &Block<'_>,
    col: &[[u32; 4]],
    tails: &[[i32; 3]; 2],
    sums: &mut [[i32; 4]],
    out0: &mut [i8],
    out1: &mut [i8],
) {
    let (rows, w_row, k_len) = (blk.rows, blk.w_row, blk.k_len);
    let n_out = out0.len();
    let body = col.len() * 4;
    let mut o = 0;
    while o < n_out {
        let left = n_out - o;
        // (pairs, distance of the second row): the odd last channel pairs with itself.
        let (np, d) = if left >= 2 {
            ((left / 2).min(PAIR_BLOCK), 1)
        } else {
            (1, 0)
        };
        let acc = &mut sums[..np];
        if col.is_empty() {
            acc.fill([0; 4]);
        } else {
            dsp::dot_2x2_rows(col, rows, w_row, o, o + d, acc);
        }
        if body < k_len {
            for (j, a) in acc.iter_mut().enumerate() {
                let r0 = &rows[(o + 2 * j) * w_row..][body..k_len];
                let r1 = &rows[(o + 2 * j + d) * w_row..][body..k_len];
                for (t, (&w0, &w1)) in r0.iter().zip(r1).enumerate() {
                    let (w0, w1) = (w0 as i32, w1 as i32);
                    a[0] = a[0].wrapping_add(tails[0][t] * w0);
                    a[1] = a[1].wrapping_add(tails[1][t] * w0);
                    a[2] = a[2].wrapping_add(tails[0][t] * w1);
                    a[3] = a[3].wrapping_add(tails[1][t] * w1);
                }
            }
        }
        let n = if d == 1 { 2 * np } else { 1 };
        let (o0, o1) = (
            &mut out0[o..o + n],
            out1.get_mut(o..o + n).unwrap_or_default(),
        );
        match blk.cache {
            Some(cache) => store(&p.stage, acc, &cache[o..o + n], o0, o1, TWO),
            None => {
                // The general path: channel by channel through `dsp::requantize`.
                for (k, v) in o0.iter_mut().enumerate() {
                    let q = p.chan.get(blk.c0 + o + k);
                    *v = p.finish(acc[k / 2][2 * (k % 2)], q);
                }
                for (k, v) in o1.iter_mut().enumerate() {
                    let q = p.chan.get(blk.c0 + o + k);
                    *v = p.finish(acc[k / 2][2 * (k % 2) + 1], q);
                }
            }
        }
        o += n;
    }
}

/// Requantizes and stores row-pair sums (`[r0 q0, r0 q1, r1 q0, r1 q1]`, the second row
/// absent when `out0` has one channel) with prepared parameters: position 0 to `out0`, and
/// position 1 to `out1` when `two`.
#[inline(always)]
fn store(
    stage: &OutputStage,
    acc: &[[i32; 4]],
    cache: &[Requant],
    out0: &mut [i8],
    out1: &mut [i8],
    two: bool,
) {
    if out0.len() == 1 {
        out0[0] = stage.finish(cache[0].apply(acc[0][0]));
        if two && let Some(v) = out1.first_mut() {
            *v = stage.finish(cache[0].apply(acc[0][1]));
        }
        return;
    }
    if two && out1.len() == out0.len() {
        dsp::requant_pairs(
            acc,
            cache,
            out0,
            out1,
            stage.zero_point,
            stage.act_min,
            stage.act_max,
        );
        return;
    }
    // Position 0 only (the last of an odd count of positions).
    for ((a, q), o0) in acc
        .iter()
        .zip(cache.chunks_exact(2))
        .zip(out0.chunks_exact_mut(2))
    {
        o0[0] = stage.finish(q[0].apply(a[0]));
        o0[1] = stage.finish(q[1].apply(a[2]));
    }
}

/// Halfwords of [`depthwise3x3_planes`]' plane buffer (2 KiB on the stack).
const PLANE: usize = 1024;

/// A byte buffer on a 4-byte boundary.
#[repr(C, align(4))]
struct Aligned<const N: usize>([MaybeUninit<u8>; N]);

/// Outputs of one strip of [`depthwise3x3_planes`] (their sums, 2 KiB on the stack).
const STRIP_OUT: usize = 512;

/// Depthwise 3x3, any channel multiplier, stride and padding, no dilation, one channel at a
/// time: the channel's input rows (a strip of them, as many as [`PLANE`] holds) are copied
/// once into a plane of 16-bit `x - zp` values with the padding as explicit zeros, so every
/// window is whole and no position needs a border case. Then per output channel of the input
/// channel and per position, each kernel row is one `SMLAD` (`(x0, x1) . (w0, w1)`, a 2-value
/// load from the plane) and one `SMLABB` (`x2 * w2`): six multiply-accumulate instructions
/// and six loads for nine MACs, and the requantization prepared once per channel.
/// False when not even three input rows fit the buffer (the caller then runs
/// [`depthwise3x3`]).
fn depthwise3x3_planes(p: &Params<'_, '_>, groups: usize, input: &[i8], output: &mut [i8]) -> bool {
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let [sy, sx] = geo.stride;
    let [pad_t, pad_l] = geo.pad;
    let c = ins.c;
    let oc = outs.c;
    let mult = oc / groups;
    if outs.h == 0 || outs.w == 0 || mult == 0 {
        return true;
    }
    // Plane columns: input columns `-pad_l ..`, as many as the widest window reaches plus two
    // (the last loads read them; their values meet zero weight lanes), rounded up to even.
    let pw = ((outs.w - 1) * sx + 6) & !1;
    let rows_in = PLANE / pw;
    if rows_in < 3 {
        return false;
    }
    // Output rows per strip: what the plane holds, at most STRIP_OUT outputs (`outs.w <=
    // PLANE / 3 < STRIP_OUT` as `pw >= outs.w`, so at least one row).
    let strip = ((rows_in - 3) / sy + 1).min(STRIP_OUT / outs.w);
    // Only the rows a strip uses are zeroed (padding columns and rows must read 0).
    // 4-byte aligned: `dw3x3_sums` reads it with `LDRD`.
    let mut plane_buf = Aligned([const { MaybeUninit::<u8>::uninit() }; 2 * PLANE]);
    let plane = prefix(&mut plane_buf.0, 2 * pw * ((strip - 1) * sy + 3), 0);
    let mut sums_buf = [const { MaybeUninit::<i32>::uninit() }; STRIP_OUT];
    let sums = prefix(&mut sums_buf, strip * outs.w, 0);
    let one_strip = strip >= outs.h;
    for g in 0..groups {
        let mut oy0 = 0;
        while oy0 < outs.h {
            let oy1 = (oy0 + strip).min(outs.h);
            let nrows = (oy1 - 1 - oy0) * sy + 3;
            // Fill the strip: plane row r is input row oy0 * sy + r - pad_t.
            // Columns `lead..lead + cols` hold input columns `0..cols`; the rest is padding.
            let lead = pad_l.min(pw);
            let cols = ins.w.min(pw - lead);
            // Plane rows `r_lo..r_hi` hold input rows; the others are padding.
            let top = oy0 * sy;
            let r_lo = pad_t.saturating_sub(top).min(nrows);
            let r_hi = (pad_t + ins.h).saturating_sub(top).clamp(r_lo, nrows);
            // With one strip per channel every channel writes the same rows `r_lo..r_hi`
            // and columns, so the padding rows zeroed by `prefix` above stay zero (on small
            // maps with many channels the two fills per channel were a tenth of the work).
            if !one_strip {
                plane[..2 * pw * r_lo].fill(0);
                plane[2 * pw * r_hi..2 * pw * nrows].fill(0);
            }
            if cols > 0 && r_hi > r_lo {
                // The columns before `lead` and after `lead + cols` are zero from the start
                // (every row writes the same columns).
                let iy0 = top + r_lo - pad_t;
                let row_in = ins.w * c;
                let src =
                    &input[iy0 * row_in + g..][..(r_hi - r_lo - 1) * row_in + (cols - 1) * c + 1];
                let dst =
                    &mut plane[2 * (pw * r_lo + lead)..][..2 * (pw * (r_hi - r_lo - 1) + cols)];
                let zp = p.zp as i16;
                for r in 0..r_hi - r_lo {
                    // SAFETY: for `r < r_hi - r_lo` and `ix < cols`, the read index
                    // `r * row_in + ix * c <= (r_hi - r_lo - 1) * row_in + (cols - 1) * c <
                    // src.len()` and the two bytes written at `2 * (r * pw + ix)` end at most
                    // at `2 * ((r_hi - r_lo - 1) * pw + cols) = dst.len()` (both lengths are
                    // the slicing bounds above, which are checked); a pair step reads `ix`
                    // and `ix + 1 < cols` and writes their four bytes as one unaligned word
                    // (`write_unaligned`).
                    unsafe {
                        let mut s = src.as_ptr().add(r * row_in);
                        let mut d = dst.as_mut_ptr().add(2 * r * pw);
                        // Two values per step, one word store (unaligned `STR` is allowed
                        // on ARMv7-M for normal memory).
                        for _ in 0..cols / 2 {
                            let (a, b) = (*s as i16 - zp, *s.add(c) as i16 - zp);
                            let v = (a as u16 as u32) | ((b as u16 as u32) << 16);
                            d.cast::<u32>().write_unaligned(v);
                            s = s.add(2 * c);
                            d = d.add(4);
                        }
                        if cols % 2 == 1 {
                            let v = (*s as i16 - zp).to_le_bytes();
                            *d = v[0];
                            *d.add(1) = v[1];
                        }
                    }
                }
            }
            for m in 0..mult {
                let o = g * mult + m;
                let w = &p.weights[o * 9..o * 9 + 9];
                let w01 = [pack(w[0], w[1]), pack(w[3], w[4]), pack(w[6], w[7])];
                let w2 = [pack(w[2], w[5]), pack(w[8], 0), 0];
                let q = p.chan.get(o);
                let rq = Requant::fast(q).map_or(Rq::General(q), Rq::Fast);
                plane_rows(p, plane, sums, pw, oy0..oy1, o, &w01, &w2, output, rq);
            }
            oy0 = oy1;
        }
    }
    true
}

/// Output rows `oys` of output channel `o` from the strip in `plane` (rows of `pw` 16-bit
/// values, row 0 = the strip's first input row), requantized by `rq` and the output stage.
/// Two passes over the whole strip, so that each loop's values fit the registers: the sums
/// (the six packed weights live across the loop, the three rows are fixed offsets from one
/// pointer), then requantize and store.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn plane_rows(
    p: &Params<'_, '_>,
    plane: &[u8],
    sums: &mut [i32],
    pw: usize,
    oys: core::ops::Range<usize>,
    o: usize,
    w01: &[u32; 3],
    w2: &[u32; 3],
    output: &mut [i8],
    rq: Rq,
) {
    let outs = p.out_shape;
    let [sy, sx] = p.geo.stride;
    let n = oys.len() * outs.w;
    let [wa, wb, wc] = *w01;
    // The third column of kernel rows 0 and 1 in one word (low, high), row 2's alone.
    let [zab, zc, _] = *w2;
    let w = [wa, wb, wc, zab, zc];
    match sx {
        1 if outs.w >= 2 => dsp::dw3x3_sums::<2>(plane, pw, sy, outs.w, oys.len(), w, sums),
        2 if outs.w >= 2 => dsp::dw3x3_sums::<4>(plane, pw, sy, outs.w, oys.len(), w, sums),
        _ => {
            let (r1, r2) = (2 * pw, 4 * pw);
            for (dy, srow) in sums[..n].chunks_exact_mut(outs.w).enumerate() {
                let row = &plane[2 * pw * dy * sy..][..6 * pw];
                for (ox, acc) in srow.iter_mut().enumerate() {
                    let u = 2 * ox * sx;
                    // SAFETY: `u + 4 * pw + 8 <= 2 * ((outs.w - 1) * sx + 4) + 4 * pw <= 6 *
                    // pw`, the length of `row` (`pw >= (outs.w - 1) * sx + 5`), so every
                    // 4-byte read at `u`, `u + 4`, plus `2 * pw` or `4 * pw`, lies inside it;
                    // `[u8; 4]` has alignment 1.
                    let ld = |at: usize| unsafe {
                        u32::from_le_bytes(*row.as_ptr().add(u + at).cast::<[u8; 4]>())
                    };
                    let mut a = smlad(ld(0), wa, 0);
                    a = smlabb(ld(4), zab, a);
                    a = smlad(ld(r1), wb, a);
                    a = smlabt(ld(r1 + 4), zab, a);
                    a = smlad(ld(r2), wc, a);
                    *acc = smlabb(ld(r2 + 4), zc, a);
                }
            }
        }
    }
    let sums = &sums[..n];
    let out = &mut output[oys.start * outs.w * outs.c..][..n * outs.c];
    match rq {
        Rq::Fast(q) if n > 0 => {
            let st = &p.stage;
            dsp::requant_store(
                sums,
                &mut out[o..],
                outs.c,
                &q,
                st.zero_point,
                st.act_min,
                st.act_max,
            );
        }
        Rq::Fast(_) => {}
        Rq::General(q) => {
            for (px, &acc) in out.chunks_exact_mut(outs.c).zip(sums.iter()) {
                px[o] = p.stage.finish(requantize(acc, q));
            }
        }
    }
}

/// How [`plane_rows`] requantizes: prepared (the fast path) or through `dsp::requantize`.
#[derive(Clone, Copy)]
enum Rq {
    Fast(Requant),
    General((i32, i32, i32)),
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
