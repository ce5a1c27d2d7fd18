//! The x86-64 variant: two inputs with AVX2, eight elements per step (sixteen with AVX-512). Each input's term is
//! looked up in its 256-entry table (the portable variant's, the reference's own values)
//! with one `vpgatherdd`, the two terms are added, and the sum is requantized with
//! [`requant8`]. Same bytes as the reference: the tables are exact; the reference adds the
//! terms with saturation, and the vector add wraps, so this path runs only when the tables'
//! extremes show that no sum can leave i32 (then both adds agree); [`requant8`] is exact
//! (`kernels/x86.rs`). Other calls run the portable variant.

use core::arch::x86_64::*;

use super::portable::{self, table};
use crate::kernels::x86::{
    Stage16, StageV, avx2_available, pack16, requant8, requant16, store16, vnni_available,
};
use crate::kernels::{OutputStage, Rescale};

/// Elements below which the portable variant runs (building the tables costs about as much
/// as 256 elements).
const MIN_LEN: usize = 256;

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

/// [`add`] without the AVX-512 path (the kernel suites hold both to the reference on one
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
        if no_saturation && avx512 {
            // SAFETY: AVX-512 F was detected (`avx512` is only passed as true after
            // `vnni_available()`); `a` and `b` hold at least
            // `n = output.len()` values.
            unsafe {
                add2_512(
                    &a[..n],
                    &b[..n],
                    &ta,
                    &tb,
                    out_mult,
                    out_shift,
                    stage,
                    output,
                )
            };
            return;
        }
        if no_saturation {
            // SAFETY: AVX2 was detected; `a` and `b` hold at least `n = output.len()` values.
            unsafe {
                add2(
                    &a[..n],
                    &b[..n],
                    &ta,
                    &tb,
                    out_mult,
                    out_shift,
                    stage,
                    output,
                )
            };
            return;
        }
    }
    portable::add(inputs, left_shift, out_mult, out_shift, stage, output)
}

/// Two inputs of `output.len()` values each, whose table sums cannot saturate.
///
/// # Safety
/// AVX2 must be available; `a.len() == b.len() == output.len()`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn add2(
    a: &[i8],
    b: &[i8],
    ta: &[i32; 256],
    tb: &[i32; 256],
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n = output.len();
    let st = StageV::new(&stage);
    let zero = _mm256_setzero_si256();
    let mult = _mm256_set1_epi32(out_mult);
    let total = _mm256_set1_epi32(31 - out_shift.clamp(-31, 30));
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
    for j in body..n {
        let acc = ta[a[j] as u8 as usize] + tb[b[j] as u8 as usize];
        output[j] = stage.finish(crate::quant::multiply_by_quantized_multiplier(
            acc, out_mult, out_shift,
        ));
    }
}

/// [`add2`] sixteen elements per step with AVX-512 F (`vpgatherdd` on 512 bits, [`requant16`]).
///
/// # Safety
/// AVX-512 F must be available; `a.len() == b.len() == output.len()`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn add2_512(
    a: &[i8],
    b: &[i8],
    ta: &[i32; 256],
    tb: &[i32; 256],
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n = output.len();
    let st = Stage16::new(&stage);
    let zero = _mm512_setzero_si512();
    let mult = _mm512_set1_epi32(out_mult);
    let total = _mm512_set1_epi32(31 - out_shift.clamp(-31, 30));
    let body = n - n % 16;
    for at in (0..body).step_by(16) {
        let (xa, xb) = (&a[at..at + 16], &b[at..at + 16]);
        let dst = &mut output[at..at + 16];
        // SAFETY: `xa`, `xb` and `dst` hold 16 bytes: one 16-byte load each and a 16-byte
        // narrowing store. The gather indices are the bytes zero-extended, `0..=255`, inside
        // the 256-entry tables.
        unsafe {
            let ia = _mm512_cvtepu8_epi32(_mm_loadu_si128(xa.as_ptr().cast()));
            let ib = _mm512_cvtepu8_epi32(_mm_loadu_si128(xb.as_ptr().cast()));
            let ga = _mm512_i32gather_epi32::<4>(ia, ta.as_ptr());
            let gb = _mm512_i32gather_epi32::<4>(ib, tb.as_ptr());
            let r = requant16(_mm512_add_epi32(ga, gb), zero, mult, total, st);
            _mm_storeu_si128(dst.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(r));
        }
    }
    for j in body..n {
        let acc = ta[a[j] as u8 as usize] + tb[b[j] as u8 as usize];
        output[j] = stage.finish(crate::quant::multiply_by_quantized_multiplier(
            acc, out_mult, out_shift,
        ));
    }
}
