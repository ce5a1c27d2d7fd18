//! Depthwise convolution by output rows (any channel multiplier, stride and dilation), with
//! AVX2 (16 outputs per step) or AVX-512 BW (32 outputs per step).
//!
//! An output row of NHWC is one run of `out.w * c` bytes. Split each padded input row into
//! `s` phase rows (`s` the stride along the width), phase `r` holding the pixels of padded
//! columns `s * x + r`: then output byte `j` (pixel `x = j / c`, channel `j % c`) reads, for tap
//! `(ky, kx)`, byte `j + ((kx * dil) / s) * c` of phase row `(kx * dil) % s` of input row `ky`.
//! Every tap is a shifted run of bytes, so the row is computed a whole vector at a time,
//! whatever `c` is: a slimmed layer of four channels fills all lanes with pixels, and no pixel
//! needs a border case (the padding is zero-point bytes in the phase rows; input rows outside
//! the input are rows of the zero point, `x - zp = 0` as the reference's skipped taps). With a
//! channel multiplier `m` the phase rows hold each input value `m` times, once per output
//! channel it feeds.
//!
//! The weights and requantization of a step depend on its first channel, `lanes * b % c`:
//! there are `c / gcd(c, lanes)` lane patterns, packed once per call. Taps go in pairs whose
//! inputs are interleaved (`vpunpck{l,h}wd`) against weights packed in the same lane order, so
//! one `vpmaddwd` adds two taps. Exactness is that of the other 16-bit kernels
//! (`kernels/x86.rs`): `x - zp` and `w` are exact in i16, pair sums exact in i32, wrapping
//! accumulation, [`requant8`]/[`requant16`] exact.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::x86::Params;
use crate::kernels::common::prefix;
use crate::kernels::x86::{PhaseRows, Stage16, StageV, pack16, requant8, requant16, store16};

/// Most kernel taps.
const TAPS: usize = 64;
/// Bytes of the phase rows of all `kh` input rows (32 KiB on the stack).
const ROWS_BUF: usize = 32768;
/// Most lane patterns.
const MAX_PATTERNS: usize = 32;
/// Packed weights (i16) on the stack (32 KiB).
const PACK: usize = 16384;
/// Most lanes of a step (AVX-512).
const MAX_LANES: usize = 32;

/// One call's geometry: what [`run`] needs, and whether its buffers hold the layer.
pub(super) struct Plan {
    lanes: usize,
    c: usize,
    sx: usize,
    n_taps: usize,
    pairs: usize,
    patterns: usize,
    row_len: usize,
    /// Pixels of a phase row that taps read (`out.w + reach / c`).
    n_x: usize,
    blocks: usize,
    out_run: usize,
    /// Tap `t`'s bytes start at `offs[t] + j0` in the row buffer (a pair's partner past the
    /// last tap repeats the last tap, against zero weights).
    offs: [usize; TAPS + 1],
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Plan {
    /// The plan of a depthwise layer (one input channel per group, any channel multiplier) at
    /// `lanes` outputs per step (16 or 32), or `None` when the layer does not fit the buffers.
    /// The caller checked the slice lengths and the grouping (`Params::path`).
    pub(super) fn new(p: &Params<'_, '_>, lanes: usize) -> Option<Self> {
        let [_, kh, kw, _] = p.w_shape;
        let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
        let c = outs.c;
        let n_taps = kh * kw;
        let sx = geo.stride[1];
        let dil = geo.dilation[1];
        if c == 0 || ins.c == 0 || n_taps == 0 || n_taps > TAPS || sx == 0 || dil == 0 {
            return None;
        }
        // A whole channel multiplier.
        if c % ins.c != 0 {
            return None;
        }
        let pairs = n_taps.div_ceil(2);
        let patterns = c / gcd(c, lanes);
        let reach = ((kw - 1) * dil / sx) * c;
        let out_run = outs.w * c;
        let blocks = out_run.div_ceil(lanes);
        let row_len = blocks * lanes + reach;
        let fits = patterns <= MAX_PATTERNS
            && pairs * patterns * 2 * lanes <= PACK
            && kh
                .checked_mul(sx)
                .and_then(|n| n.checked_mul(row_len))
                .is_some_and(|n| n <= ROWS_BUF);
        if !fits {
            return None;
        }
        let mut offs = [0; TAPS + 1];
        for (t, o) in offs.iter_mut().enumerate().take(2 * pairs) {
            let t = t.min(n_taps - 1);
            let (ky, kx) = (t / kw, t % kw);
            let (r, shift) = ((kx * dil) % sx, (kx * dil) / sx);
            *o = (ky * sx + r) * row_len + shift * c;
        }
        Some(Plan {
            lanes,
            c,
            sx,
            n_taps,
            pairs,
            patterns,
            row_len,
            n_x: outs.w + reach / c,
            blocks,
            out_run,
            offs,
        })
    }
}

/// Depthwise by output rows; see the module documentation.
///
/// # Safety
/// AVX2 must be available, and AVX-512 F and BW when `plan.lanes == 32`; `Params::path` must
/// have checked the slice lengths and built `plan` from `p`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn run(p: &Params<'_, '_>, plan: &Plan, input: &[i8], output: &mut [i8]) {
    let [_, kh, _, i_full] = p.w_shape;
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let (lanes, c, sx) = (plan.lanes, plan.c, plan.sx);
    let (n_taps, pairs, patterns) = (plan.n_taps, plan.pairs, plan.patterns);
    let per_o = n_taps * i_full;
    // packed[(pair * patterns + pat) * 2 * lanes ..]: the first `lanes` i16 for `vpunpcklwd`'s
    // lanes, the next `lanes` for `vpunpckhwd`'s (both interleave within 128-bit lanes): i32
    // lane `i` of the low half is output `8 * (i / 4) + i % 4` of the step, of the high half
    // `8 * (i / 4) + 4 + i % 4`; its two i16 are taps `2 * pair` and `2 * pair + 1` (zero past
    // the last tap).
    let mut packed_buf = [MaybeUninit::<i16>::uninit(); PACK];
    let packed = prefix(&mut packed_buf, pairs * patterns * 2 * lanes, 0);
    // The channel of each output of a step, per pattern.
    let mut chs = [0usize; MAX_PATTERNS * MAX_LANES];
    for pat in 0..patterns {
        let base = (lanes * pat) % c;
        for pos in 0..lanes {
            chs[pat * lanes + pos] = if c >= lanes {
                let ch = base + pos;
                if ch >= c { ch - c } else { ch }
            } else {
                (base + pos) % c
            };
        }
    }
    for pat in 0..patterns {
        for pos in 0..lanes {
            let row = &p.weights[chs[pat * lanes + pos] * per_o..][..per_o];
            // Output `pos` is i32 lane `4 * (pos / 8) + pos % 4` of the low (`pos % 8 < 4`)
            // or the high half.
            let (half, i) = ((pos % 8) / 4, 4 * (pos / 8) + pos % 4);
            for pair in 0..pairs {
                let at = (pair * patterns + pat) * 2 * lanes + half * lanes + 2 * i;
                packed[at] = row[2 * pair * i_full] as i16;
                if 2 * pair + 1 < n_taps {
                    packed[at + 1] = row[(2 * pair + 1) * i_full] as i16;
                }
            }
        }
    }
    // Requantization per pattern and output of the step, in output order.
    let mut bias = [0i32; MAX_PATTERNS * MAX_LANES];
    let mut mult = [0i32; MAX_PATTERNS * MAX_LANES];
    let mut total = [1i32; MAX_PATTERNS * MAX_LANES];
    for pat in 0..patterns {
        for pos in 0..lanes {
            let (b, m, s) = p.chan.get(chs[pat * lanes + pos]);
            let k = pat * lanes + pos;
            (bias[k], mult[k], total[k]) = (b, m, 31 - s.clamp(-31, 30));
        }
    }
    let zp8 = p.zp as i8;
    // The phase rows: pixels whose padded column is not an input column stay the zero point
    // for the whole call; the others are written when their input row changes.
    let mut rows_buf = [MaybeUninit::<i8>::uninit(); ROWS_BUF];
    let rows = prefix(&mut rows_buf, kh * sx * plan.row_len, zp8);
    let mut held = [None::<usize>; TAPS];
    let in_run = ins.w * ins.c;
    let phase = PhaseRows {
        sx,
        pad_l: geo.pad[1],
        in_w: ins.w,
        cin: ins.c,
        c,
        n_x: plan.n_x,
        row_len: plan.row_len,
    };
    for oy in 0..outs.h {
        for (ky, held) in held.iter_mut().enumerate().take(kh) {
            let iy = (oy * geo.stride[0] + ky * geo.dilation[0])
                .checked_sub(geo.pad[0])
                .filter(|&iy| iy < ins.h);
            if *held == iy {
                continue;
            }
            *held = iy;
            let src = iy.map(|iy| &input[iy * in_run..][..in_run]);
            let slot = &mut rows[ky * sx * plan.row_len..][..sx * plan.row_len];
            phase.fill(slot, src, zp8);
        }
        let out_row = &mut output[oy * plan.out_run..][..plan.out_run];
        let ctx = Step {
            rows,
            plan,
            packed,
            bias: &bias,
            mult: &mult,
            total: &total,
            zp: p.zp,
        };
        if lanes == 32 {
            // SAFETY: `lanes == 32` only when AVX-512 F and BW are available (contract).
            let st = unsafe { Stage16::new(&p.stage) };
            for b in 0..plan.blocks {
                // SAFETY: as above.
                unsafe { ctx.step32(b, st, out_row) };
            }
        } else {
            let st = StageV::new(&p.stage);
            for b in 0..plan.blocks {
                ctx.step16(b, st, out_row);
            }
        }
    }
}

/// What a step of [`run`] reads.
struct Step<'a> {
    rows: &'a [i8],
    plan: &'a Plan,
    packed: &'a [i16],
    bias: &'a [i32; MAX_PATTERNS * MAX_LANES],
    mult: &'a [i32; MAX_PATTERNS * MAX_LANES],
    total: &'a [i32; MAX_PATTERNS * MAX_LANES],
    zp: i16,
}

impl Step<'_> {
    /// The `lanes` bytes of tap `t` for the step at `j0`.
    #[inline(always)]
    fn taps(&self, t: usize, j0: usize) -> &[i8] {
        let at = self.plan.offs[t] + j0;
        &self.rows[at..at + self.plan.lanes]
    }

    /// Sixteen outputs from `16 * b` of the row (AVX2).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn step16(&self, b: usize, st: StageV, out_row: &mut [i8]) {
        let plan = self.plan;
        let j0 = 16 * b;
        let pat = b % plan.patterns;
        let zp16 = _mm256_set1_epi16(self.zp);
        let load = |t: usize| -> __m256i {
            let bytes = self.taps(t, j0);
            // SAFETY: `bytes` is 16 bytes long: one unaligned 16-byte load.
            let v = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
            _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zp16)
        };
        let mut acc_lo = _mm256_setzero_si256();
        let mut acc_hi = _mm256_setzero_si256();
        for pair in 0..plan.pairs {
            let (xa, xb) = (load(2 * pair), load(2 * pair + 1));
            let wq = &self.packed[(pair * plan.patterns + pat) * 32..][..32];
            // SAFETY: `wq` holds 32 i16: two 256-bit loads.
            let (w_lo, w_hi) = unsafe {
                (
                    _mm256_loadu_si256(wq.as_ptr().cast()),
                    _mm256_loadu_si256(wq.as_ptr().add(16).cast()),
                )
            };
            let lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), w_lo);
            let hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), w_hi);
            acc_lo = _mm256_add_epi32(acc_lo, lo);
            acc_hi = _mm256_add_epi32(acc_hi, hi);
        }
        // acc_lo holds outputs 0..3 | 8..11, acc_hi 4..7 | 12..15.
        let a = _mm256_permute2x128_si256::<0x20>(acc_lo, acc_hi);
        let bv = _mm256_permute2x128_si256::<0x31>(acc_lo, acc_hi);
        let qi = pat * 16;
        // SAFETY: `qi + 16 <= patterns * 16 <= MAX_PATTERNS * MAX_LANES`: loads in bounds.
        let ld = |v: &[i32; MAX_PATTERNS * MAX_LANES], i: usize| unsafe {
            _mm256_loadu_si256(v.as_ptr().add(qi + i).cast())
        };
        let (bias, mult, total) = (self.bias, self.mult, self.total);
        let ra = requant8(a, ld(bias, 0), ld(mult, 0), ld(total, 0), st);
        let rb = requant8(bv, ld(bias, 8), ld(mult, 8), ld(total, 8), st);
        let end = (j0 + 16).min(plan.out_run);
        store16(&mut out_row[j0..end], pack16(ra, rb));
    }

    /// Thirty-two outputs from `32 * b` of the row (AVX-512 BW).
    ///
    /// # Safety
    /// AVX-512 F and BW must be available.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn step32(&self, b: usize, st: Stage16, out_row: &mut [i8]) {
        let plan = self.plan;
        let j0 = 32 * b;
        let pat = b % plan.patterns;
        let zp16 = _mm512_set1_epi16(self.zp);
        let load = |t: usize| -> __m512i {
            let bytes = self.taps(t, j0);
            // SAFETY: `bytes` is 32 bytes long: one unaligned 32-byte load.
            let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
            _mm512_sub_epi16(_mm512_cvtepi8_epi16(v), zp16)
        };
        let mut acc_lo = _mm512_setzero_si512();
        let mut acc_hi = _mm512_setzero_si512();
        for pair in 0..plan.pairs {
            let (xa, xb) = (load(2 * pair), load(2 * pair + 1));
            let wq = &self.packed[(pair * plan.patterns + pat) * 64..][..64];
            // SAFETY: `wq` holds 64 i16: two 512-bit loads.
            let (w_lo, w_hi) = unsafe {
                (
                    _mm512_loadu_si512(wq.as_ptr().cast()),
                    _mm512_loadu_si512(wq.as_ptr().add(32).cast()),
                )
            };
            let lo = _mm512_madd_epi16(_mm512_unpacklo_epi16(xa, xb), w_lo);
            let hi = _mm512_madd_epi16(_mm512_unpackhi_epi16(xa, xb), w_hi);
            acc_lo = _mm512_add_epi32(acc_lo, lo);
            acc_hi = _mm512_add_epi32(acc_hi, hi);
        }
        // acc_lo holds outputs 0..3 | 8..11 | 16..19 | 24..27 (i32 lanes 0..15), acc_hi
        // 4..7 | 12..15 | 20..23 | 28..31; indices 16.. select from acc_hi.
        let ia = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        let ib = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        let a = _mm512_permutex2var_epi32(acc_lo, ia, acc_hi);
        let bv = _mm512_permutex2var_epi32(acc_lo, ib, acc_hi);
        let qi = pat * 32;
        // SAFETY: `qi + 32 <= patterns * 32 <= MAX_PATTERNS * MAX_LANES`: loads in bounds.
        let ld = |v: &[i32; MAX_PATTERNS * MAX_LANES], i: usize| unsafe {
            _mm512_loadu_si512(v.as_ptr().add(qi + i).cast())
        };
        let (bias, mult, total) = (self.bias, self.mult, self.total);
        let ra = requant16(a, ld(bias, 0), ld(mult, 0), ld(total, 0), st);
        let rb = requant16(bv, ld(bias, 16), ld(mult, 16), ld(total, 16), st);
        let dst = &mut out_row[j0..(j0 + 32).min(plan.out_run)];
        let n = dst.len();
        let mask = |k: usize| ((1u32 << k.min(16)) - 1) as u16;
        // SAFETY: the masked stores write the first `n` bytes of `dst` (`mask(n)` covers
        // `n.min(16)` bytes from `dst`'s start, the second `n - 16` from byte 16, taken only
        // when `n > 16`); masked-off bytes are neither written nor faulted on.
        unsafe {
            _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr(), mask(n), ra);
            if n > 16 {
                _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(16), mask(n - 16), rb);
            }
        }
    }
}
