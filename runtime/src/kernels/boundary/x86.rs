//! The x86-64 variant of the input quantization: eight values per step with AVX2, the
//! reference's operations in the same order on each lane. IEEE single-precision division,
//! addition and subtraction give the same correctly rounded result in a vector lane as in a
//! scalar register (x86-64 computes `f32` in SSE registers, never in x87's wider format):
//! `v = x / scale`; NaN to 0 (`vcmpunordps`, then and-not: +0.0, as the reference's 0.0); the
//! clamp to `-1e6..=1e6` as `min` then `max` (no NaN is left, and `-0.0` passes unchanged as
//! in `f32::clamp`); rounding half to even by adding and subtracting `1.5 * 2^23`; the
//! conversion of that whole number to i32 is exact; then the zero point and the clamp to int8
//! in integers.

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::x86::{avx2_available, pack8};

/// Quantize float to int8; same contract and bytes as [`reference::quantize`].
pub fn quantize(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
    let n = input.len().min(output.len());
    if avx2_available() && n >= 8 {
        // SAFETY: AVX2 was detected; both slices hold `n` values.
        unsafe { quantize_avx2(&input[..n], scale, zero_point, &mut output[..n]) };
    } else {
        reference::quantize(input, scale, zero_point, output);
    }
}

/// # Safety
/// AVX2 must be available; `input.len() == output.len()`.
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
    let n = input.len();
    let s = _mm256_set1_ps(scale);
    let (lo, hi) = (_mm256_set1_ps(-1.0e6), _mm256_set1_ps(1.0e6));
    let magic = _mm256_set1_ps(12_582_912.0);
    let zp = _mm256_set1_epi32(zero_point);
    let (qlo, qhi) = (_mm256_set1_epi32(-128), _mm256_set1_epi32(127));
    let body = n - n % 8;
    for at in (0..body).step_by(8) {
        let x = &input[at..at + 8];
        // SAFETY: `x` holds 8 floats: one unaligned 32-byte load.
        let v = _mm256_div_ps(unsafe { _mm256_loadu_ps(x.as_ptr()) }, s);
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v);
        let v = _mm256_andnot_ps(nan, v);
        let v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
        let r = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
        let q = _mm256_add_epi32(_mm256_cvttps_epi32(r), zp);
        let q = _mm256_min_epi32(_mm256_max_epi32(q, qlo), qhi);
        let bytes = pack8(q);
        for (o, &v) in output[at..at + 8].iter_mut().zip(&bytes) {
            *o = v as i8;
        }
    }
    reference::quantize(&input[body..], scale, zero_point, &mut output[body..]);
}
