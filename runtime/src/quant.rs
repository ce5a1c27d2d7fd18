//! Integer-only requantization with one rounding, as TensorFlow Lite Micro's reference kernels
//! compute it when built with `TFLITE_SINGLE_ROUNDING` (the mode CMSIS-NN's `arm_nn_requantize`
//! also offers). ONNX Runtime and tract requantize in one rounding too, so single rounding is
//! what lets a pre-quantized ONNX model run here within a step of those runtimes.
//!
//! A real multiplier `M > 0` is stored as a Q31 `multiplier` in `[2^30, 2^31)` and a `shift`
//! (clamped to `-31..=30`) with `M = multiplier * 2^(shift - 31)`. Applying it to an int32
//! accumulator `x`:
//!
//! `y = floor((x * multiplier + 2^(30 - shift)) / 2^(31 - shift))`,
//!
//! i.e. `x * M` rounded to nearest with ties toward +infinity, computed exactly in 64 bits and
//! saturated to int32. [`multiply_by_quantized_multiplier_div`] additionally divides by a
//! small positive integer inside the same rounding (average pooling's window count).
//!
//! The gemmlowp primitives [`srdhm`] and [`rounding_divide_by_pot`] remain for the softmax,
//! whose fixed-point algorithm is defined in terms of them. The same code runs on every
//! target, so the host simulation and the firmware agree bit for bit.

/// Saturating rounding doubling high multiply: `round(a * b / 2^31)`, saturating the one
/// overflow case `i32::MIN * i32::MIN`.
#[inline]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncates toward zero, as in C; the result fits: |ab| < 2^62.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `x / 2^exponent` rounded half away from zero. `exponent` is clamped to `0..=31`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = exponent.clamp(0, 31) as u32;
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i32;
    (x >> e) + (remainder > threshold) as i32
}

/// Apply a quantized multiplier with one rounding (see the module docs). `shift` is clamped
/// to `-31..=30`; the result saturates to int32.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let total = (31 - shift.clamp(-31, 30)) as u32; // 1..=62
    // |x * multiplier| < 2^62 and the rounding term is at most 2^61: no i64 overflow.
    let prod = x as i64 * multiplier as i64 + (1i64 << (total - 1));
    (prod >> total).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// `x * M / divisor` in one rounding (ties toward +infinity), saturated to int32; `divisor = 0`
/// gives 0. With `divisor = 1` this is [`multiply_by_quantized_multiplier`].
#[inline]
pub fn multiply_by_quantized_multiplier_div(
    x: i32,
    multiplier: i32,
    shift: i32,
    divisor: u32,
) -> i32 {
    if divisor == 0 {
        return 0;
    }
    let total = (31 - shift.clamp(-31, 30)) as u32; // 1..=62
    let num = x as i64 * multiplier as i64; // |num| < 2^62
    let d_bits = 32 - divisor.leading_zeros();
    // floor(num / den + 1/2) = floor((num + floor(den / 2)) / den) for den > 0.
    let q = if total + d_bits <= 62 {
        // den < 2^62: num + den / 2 < 2^63.
        let den = (divisor as i64) << total;
        (num + den / 2).div_euclid(den)
    } else {
        let den = (divisor as i128) << total;
        ((num as i128 + den / 2).div_euclid(den)) as i64
    };
    q.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// The multiplier/shift pair that leaves a value unchanged (`M = 1`).
pub const IDENTITY: (i32, i32) = (1 << 30, 1);

/// Clamp to int8 and narrow.
#[inline]
pub fn saturate_i8(x: i32) -> i8 {
    x.clamp(i8::MIN as i32, i8::MAX as i32) as i8
}

/// Host-side helpers that need floating point: computing multipliers from real scales.
#[cfg(feature = "std")]
pub mod host {
    /// Split a real multiplier `m >= 0` into `(multiplier, shift)` as TFLM's
    /// `QuantizeMultiplier`: `m = multiplier * 2^(shift - 31)` with `multiplier` in
    /// `[2^30, 2^31)`. Zero gives `(0, 0)`. Shifts below -31 flush to zero.
    pub fn quantize_multiplier(m: f64) -> (i32, i32) {
        if m <= 0.0 || !m.is_finite() {
            return (0, 0);
        }
        // frexp: m = q * 2^e with q in [0.5, 1).
        let mut e = m.log2().floor() as i32 + 1;
        let mut q = m / 2f64.powi(e);
        // Correct for log2 rounding at exact powers of two.
        while q >= 1.0 {
            q /= 2.0;
            e += 1;
        }
        while q < 0.5 {
            q *= 2.0;
            e -= 1;
        }
        let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
        if q_fixed == 1i64 << 31 {
            q_fixed /= 2;
            e += 1;
        }
        if e < -31 {
            return (0, 0);
        }
        if e > 30 {
            return (i32::MAX, 30);
        }
        (q_fixed as i32, e)
    }

    /// Add parameters for any number of inputs (TFLM's scheme: every input scale relative to
    /// twice the largest, a left shift of 20): `(per-input (m, shift), (m_out, shift_out),
    /// left_shift)`. With two inputs this is [`add_params`].
    pub fn add_params_n(
        scales: &[f64],
        s_out: f64,
    ) -> (std::vec::Vec<(i32, i32)>, (i32, i32), i32) {
        const LEFT_SHIFT: i32 = 20;
        let twice_max = 2.0 * scales.iter().copied().fold(0.0, f64::max);
        let ins = scales
            .iter()
            .map(|&s| quantize_multiplier(s / twice_max))
            .collect();
        let out = quantize_multiplier(twice_max / ((1i64 << LEFT_SHIFT) as f64 * s_out));
        (ins, out, LEFT_SHIFT)
    }

    /// TFLM's int8 Add parameters for input scales `s1`, `s2` and output scale `s_out`:
    /// `[m1, shift1, m2, shift2, m_out, shift_out, left_shift]`.
    pub fn add_params(s1: f64, s2: f64, s_out: f64) -> [i32; 7] {
        const LEFT_SHIFT: i32 = 20;
        let twice_max = 2.0 * s1.max(s2);
        let (m1, sh1) = quantize_multiplier(s1 / twice_max);
        let (m2, sh2) = quantize_multiplier(s2 / twice_max);
        let (mo, sho) = quantize_multiplier(twice_max / ((1i64 << LEFT_SHIFT) as f64 * s_out));
        [m1, sh1, m2, sh2, mo, sho, LEFT_SHIFT]
    }

    /// TFLM's softmax preprocessing for int8 input of scale `input_scale` and `beta = 1`:
    /// `(beta_multiplier, beta_left_shift, diff_min)`.
    pub fn softmax_params(input_scale: f64) -> (i32, i32, i32) {
        const SCALED_DIFF_INTEGER_BITS: i32 = 5;
        let real = (input_scale * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64)
            .min((1i64 << 31) as f64 - 1.0);
        let (mult, shift) = quantize_multiplier(real);
        let shift = shift.max(0);
        let max_input_rescaled = ((1i64 << SCALED_DIFF_INTEGER_BITS) - 1) as f64
            * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
            / (1i64 << shift) as f64;
        (mult, shift, -(max_input_rescaled.floor() as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round to nearest, ties toward +infinity, of `num / den` (`den > 0`), exactly.
    fn round_half_up(num: i128, den: i128) -> i128 {
        (2 * num + den).div_euclid(2 * den)
    }

    /// Exact rational reference of the single-rounding scheme.
    fn reference(x: i32, m: i32, s: i32, d: u32) -> i32 {
        let total = 31 - s.clamp(-31, 30);
        round_half_up(x as i128 * m as i128, (d as i128) << total)
            .clamp(i32::MIN as i128, i32::MAX as i128) as i32
    }

    #[test]
    fn requant_matches_rational_reference() {
        let mut seed = 0x1234_5678u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20000 {
            let x = (next() as i32) >> (next() % 20);
            let m = (1 << 30) + (next() % (1 << 30)) as i32;
            let s = (next() % 20) as i32 - 15;
            assert_eq!(
                multiply_by_quantized_multiplier(x, m, s),
                reference(x, m, s, 1),
                "x={x} m={m} s={s}"
            );
            let d = match next() % 4 {
                0 => 1 + (next() % 9) as u32,
                1 => 1 + (next() % 1000) as u32,
                2 => next() as u32 | 1,
                _ => u32::MAX - (next() % 3) as u32,
            };
            let s = (next() % 62) as i32 - 31;
            assert_eq!(
                multiply_by_quantized_multiplier_div(x, m, s, d),
                reference(x, m, s, d),
                "x={x} m={m} s={s} d={d}"
            );
        }
    }

    #[test]
    fn identity_multiplier_is_identity() {
        for x in [-100_000, -129, -1, 0, 1, 127, 99_999] {
            assert_eq!(
                multiply_by_quantized_multiplier(x, IDENTITY.0, IDENTITY.1),
                x
            );
        }
    }

    #[test]
    fn extremes_saturate_without_overflow() {
        for x in [i32::MIN, i32::MAX] {
            for (m, s) in [(i32::MAX, 30), (1 << 30, 30), (i32::MAX, -31), (1 << 30, 0)] {
                assert_eq!(
                    multiply_by_quantized_multiplier(x, m, s),
                    reference(x, m, s, 1)
                );
                for d in [1, 3, u32::MAX] {
                    assert_eq!(
                        multiply_by_quantized_multiplier_div(x, m, s, d),
                        reference(x, m, s, d)
                    );
                }
            }
        }
        assert_eq!(multiply_by_quantized_multiplier_div(5, 1 << 30, 1, 0), 0);
    }

    #[test]
    fn ties_round_toward_positive_infinity() {
        // M = 0.5 exactly.
        let got: [i32; 4] = [-3, -1, 1, 3].map(|x| multiply_by_quantized_multiplier(x, 1 << 30, 0));
        assert_eq!(got, [-1, 0, 1, 2]);
        // M = 1, divided by 4: -6/4 = -1.5 -> -1, 6/4 = 1.5 -> 2.
        assert_eq!(
            multiply_by_quantized_multiplier_div(-6, IDENTITY.0, IDENTITY.1, 4),
            -1
        );
        assert_eq!(
            multiply_by_quantized_multiplier_div(6, IDENTITY.0, IDENTITY.1, 4),
            2
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(5, 2), 1);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
    }

    #[cfg(feature = "std")]
    #[test]
    fn quantize_multiplier_round_trips() {
        for m in [1e-6, 0.0003, 0.25, 0.5, 0.7, 1.0, 1.5, 3.75, 1000.0] {
            let (q, s) = host::quantize_multiplier(m);
            assert!((1 << 30..=i32::MAX).contains(&q), "{m}: {q}");
            let back = q as f64 * 2f64.powi(s - 31);
            assert!((back - m).abs() / m < 1e-9, "{m} -> {back}");
        }
    }
}
