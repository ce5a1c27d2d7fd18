//! The x86-64 variant of Add with two inputs. Each input's term depends only on its int8
//! value and is read from its 256-entry table (the portable variant's, the reference's own
//! values): with AVX-512 VBMI 64 elements per step by byte-plane lookups (`add2_vbmi`), else
//! with AVX2 eight per step by `vpgatherdd` (`add2`); the two terms are added and the sum is
//! requantized with [`requant16`] / [`requant8`]. Same bytes as the reference: the tables are
//! exact; the reference adds the terms with saturation and the vector add wraps, so these
//! paths run only when the tables' extremes show that no sum can leave i32 (then both adds
//! agree); the requantizations are exact (`kernels/x86.rs`). Other calls run the portable
//! variant.

use core::arch::x86_64::*;

use super::portable::{self, table};
use crate::kernels::x86::{
    Stage16, StageV, avx2_available, pack16, requant8, requant16, store16, vbmi_available,
    vnni_available,
};
use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Elements below which the portable variant runs (building the tables costs about as much
/// as 256 elements).
const MIN_LEN: usize = 256;

/// Two inputs whose table sums cannot saturate: their term tables and the output's
/// requantization.
struct Two {
    ta: [i32; 256],
    tb: [i32; 256],
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
}

impl Two {
    /// One element, as the reference computes it (the vector steps' scalar form, for the
    /// elements past their last whole step).
    fn one(&self, x: i8, y: i8) -> i8 {
        let acc = self.ta[x as u8 as usize] + self.tb[y as u8 as usize];
        self.stage.finish(multiply_by_quantized_multiplier(
            acc,
            self.out_mult,
            self.out_shift,
        ))
    }
}

/// Element-wise add; same contract and bytes as [`super::reference::add`].
pub fn add(
    inputs: &[(&[i8], Rescale)],
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    add_at(
        vnni_available(),
        inputs,
        left_shift,
        out_mult,
        out_shift,
        stage,
        output,
    )
}

/// [`add`] without the AVX-512 VBMI path (the kernel suites hold both to the reference on one
/// machine).
pub fn add_avx2(
    inputs: &[(&[i8], Rescale)],
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    add_at(
        false, inputs, left_shift, out_mult, out_shift, stage, output,
    )
}

/// `avx512`: whether the AVX-512 path may run (passed only when `vnni_available()`).
fn add_at(
    avx512: bool,
    inputs: &[(&[i8], Rescale)],
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n = output.len();
    if let [(a, ra), (b, rb)] = inputs
        && avx2_available()
        && n >= MIN_LEN
        && a.len() >= n
        && b.len() >= n
    {
        let (ta, tb) = (table(*ra, left_shift), table(*rb, left_shift));
        let bounds = |t: &[i32; 256]| {
            let (lo, hi) = t
                .iter()
                .fold((i32::MAX, i32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            (lo as i64, hi as i64)
        };
        let ((lo_a, hi_a), (lo_b, hi_b)) = (bounds(&ta), bounds(&tb));
        let no_saturation = hi_a + hi_b <= i32::MAX as i64 && lo_a + lo_b >= i32::MIN as i64;
        if no_saturation {
            let two = Two {
                ta,
                tb,
                out_mult,
                out_shift,
                stage,
            };
            let (a, b) = (&a[..n], &b[..n]);
            let done = if avx512 && vbmi_available() {
                // SAFETY: AVX-512 F, BW and VBMI were detected (`avx512` is only passed as
                // true after `vnni_available()`, and `vbmi_available()`); `a` and `b` hold
                // `n = output.len()` values.
                unsafe { add2_vbmi(a, b, &two, output) }
            } else {
                // SAFETY: AVX2 was detected; `a` and `b` hold `n = output.len()` values.
                unsafe { add2(a, b, &two, output) }
            };
            for ((o, &x), &y) in output[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
                *o = two.one(x, y);
            }
            return;
        }
    }
    portable::add(inputs, left_shift, out_mult, out_shift, stage, output)
}

/// The whole steps of eight elements of two inputs of `output.len()` values each; returns how
/// many elements it wrote (the caller does the rest with [`Two::one`]).
///
/// # Safety
/// AVX2 must be available; `a.len() == b.len() == output.len()`.
#[target_feature(enable = "avx2")]
unsafe fn add2(a: &[i8], b: &[i8], two: &Two, output: &mut [i8]) -> usize {
    let n = output.len();
    let (ta, tb) = (&two.ta, &two.tb);
    let st = StageV::new(&two.stage);
    let zero = _mm256_setzero_si256();
    let mult = _mm256_set1_epi32(two.out_mult);
    let total = _mm256_set1_epi32(31 - two.out_shift.clamp(-31, 30));
    // Eight terms of each input from `at`, summed.
    let sum8 = |at: usize| -> __m256i {
        let (xa, xb) = (&a[at..at + 8], &b[at..at + 8]);
        // SAFETY: `xa` and `xb` hold 8 bytes: one 8-byte load each. The gather indices are
        // the bytes zero-extended, `0..=255`, inside the 256-entry tables.
        unsafe {
            let ia = _mm256_cvtepu8_epi32(_mm_loadl_epi64(xa.as_ptr().cast()));
            let ib = _mm256_cvtepu8_epi32(_mm_loadl_epi64(xb.as_ptr().cast()));
            let ga = _mm256_i32gather_epi32::<4>(ta.as_ptr(), ia);
            let gb = _mm256_i32gather_epi32::<4>(tb.as_ptr(), ib);
            _mm256_add_epi32(ga, gb)
        }
    };
    let body = n - n % 16;
    for at in (0..body).step_by(16) {
        let r0 = requant8(sum8(at), zero, mult, total, st);
        let r1 = requant8(sum8(at + 8), zero, mult, total, st);
        store16(&mut output[at..at + 16], pack16(r0, r1));
    }
    body
}

/// [`add2`] 64 elements per step with AVX-512 VBMI: each table is held as four byte planes
/// (byte `p` of every entry, 256 bytes = four vectors), and a plane's 64 lookups are two
/// `vpermi2b` (entries 0-127 and 128-255, index bits 0-6) and a blend on index bit 7. The
/// input bytes are first put in the order that makes the byte-to-word-to-dword unpacking
/// (which interleaves within 128-bit lanes) come out as elements 0-15, 16-31, 32-47, 48-63;
/// then the two inputs' terms are added and requantized sixteen lanes at a time. Exact as
/// [`add2`]: the same table entries, the same wrapping add (no saturation possible, checked
/// by the caller), [`requant16`].
///
/// Returns how many elements it wrote, as [`add2`].
///
/// # Safety
/// AVX-512 F, BW and VBMI must be available; `a.len() == b.len() == output.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn add2_vbmi(a: &[i8], b: &[i8], two: &Two, output: &mut [i8]) -> usize {
    let n = output.len();
    let st = Stage16::new(&two.stage);
    let zero = _mm512_setzero_si512();
    let mult = _mm512_set1_epi32(two.out_mult);
    let total = _mm512_set1_epi32(31 - two.out_shift.clamp(-31, 30));
    // Byte planes: `planes[p][q]` holds byte `p` of entries `64 q .. 64 q + 64`.
    let planes = |t: &[i32; 256]| -> [[__m512i; 4]; 4] {
        core::array::from_fn(|p| {
            core::array::from_fn(|q| {
                let bytes: [u8; 64] = core::array::from_fn(|k| (t[64 * q + k] >> (8 * p)) as u8);
                // SAFETY: 64 bytes of a 64-byte array.
                unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
            })
        })
    };
    let (pa, pb) = (planes(&two.ta), planes(&two.tb));
    // After the unpacking below, dword lane `i` of vector `v` (0..4) holds the element at byte
    // position `16 * (i / 4) + 4 * v + i % 4` of the looked-up vectors; element `16 v + i`
    // must sit there.
    let order: [u8; 64] = {
        let mut o = [0u8; 64];
        for v in 0..4 {
            for i in 0..16 {
                o[16 * (i / 4) + 4 * v + i % 4] = (16 * v + i) as u8;
            }
        }
        o
    };
    // SAFETY: 64 bytes of a 64-byte array.
    let order = unsafe { _mm512_loadu_si512(order.as_ptr().cast()) };
    // The 64 terms of one input from `x` (64 bytes), as four vectors of 16 i32 in element
    // order.
    let terms = |x: &[i8], pl: &[[__m512i; 4]; 4]| -> [__m512i; 4] {
        // SAFETY: `x` holds 64 bytes: one 64-byte load.
        let raw = unsafe { _mm512_loadu_si512(x.as_ptr().cast()) };
        let idx = _mm512_permutexvar_epi8(order, raw);
        let high = _mm512_movepi8_mask(idx);
        let look = |p: usize| {
            let lo = _mm512_permutex2var_epi8(pl[p][0], idx, pl[p][1]);
            let hi = _mm512_permutex2var_epi8(pl[p][2], idx, pl[p][3]);
            _mm512_mask_blend_epi8(high, lo, hi)
        };
        let (b0, b1, b2, b3) = (look(0), look(1), look(2), look(3));
        let (w01_lo, w01_hi) = (_mm512_unpacklo_epi8(b0, b1), _mm512_unpackhi_epi8(b0, b1));
        let (w23_lo, w23_hi) = (_mm512_unpacklo_epi8(b2, b3), _mm512_unpackhi_epi8(b2, b3));
        [
            _mm512_unpacklo_epi16(w01_lo, w23_lo),
            _mm512_unpackhi_epi16(w01_lo, w23_lo),
            _mm512_unpacklo_epi16(w01_hi, w23_hi),
            _mm512_unpackhi_epi16(w01_hi, w23_hi),
        ]
    };
    let body = n - n % 64;
    for at in (0..body).step_by(64) {
        let (sa, sb) = (terms(&a[at..at + 64], &pa), terms(&b[at..at + 64], &pb));
        let dst = &mut output[at..at + 64];
        for v in 0..4 {
            let r = requant16(_mm512_add_epi32(sa[v], sb[v]), zero, mult, total, st);
            // SAFETY: `dst` holds 64 bytes: a 16-byte store at `16 v`.
            unsafe {
                _mm_storeu_si128(dst.as_mut_ptr().add(16 * v).cast(), _mm512_cvtepi32_epi8(r))
            };
        }
    }
    body
}
