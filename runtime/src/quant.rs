//! Integer-only requantization, exactly as TensorFlow Lite Micro's reference kernels and
//! CMSIS-NN do it (gemmlowp fixed point).
//!
//! A real multiplier `M > 0` is stored as a Q31 `multiplier` in `[2^30, 2^31)` and a `shift`
//! with `M = multiplier * 2^(shift - 31)`. Applying it to an int32 accumulator `x`:
//!
//! 1. `x' = x * 2^max(shift, 0)` (saturating),
//! 2. `y = SRDHM(x', multiplier)`: the high 32 bits of the doubled 64-bit product, rounded to
//!    nearest with ties toward +infinity, i.e. `floor(x' * multiplier / 2^31 + 1/2)`
//!    (*saturating rounding doubling high multiply*; gemmlowp's nudge `1 - 2^30` for negative
//!    products makes `-0.5` round to `0`, not `-1`),
//! 3. `z = RDivPOT(y, max(-shift, 0))`: division by a power of two, rounded half away from zero.
//!
//! Two roundings, as TFLM's default (non "single rounding") build. The same code runs on every
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

/// Apply a quantized multiplier (see the module docs). `shift` is clamped to `-31..=30`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let shift = shift.clamp(-31, 30);
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(srdhm(x.saturating_mul(1 << left), multiplier), right)
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

    /// Round half away from zero of `num / den` (`den > 0`), exactly.
    fn round_half_away(num: i128, den: i128) -> i128 {
        let q = (num.abs() * 2 + den) / (2 * den);
        if num < 0 { -q } else { q }
    }

    /// Round to nearest, ties toward +infinity, of `num / den` (`den > 0`), exactly.
    fn round_half_up(num: i128, den: i128) -> i128 {
        (2 * num + den).div_euclid(2 * den)
    }

    /// Exact rational reference of the two-rounding scheme.
    fn reference(x: i32, m: i32, s: i32) -> i32 {
        let xl = (x as i128 * (1i128 << s.max(0))).clamp(i32::MIN as i128, i32::MAX as i128);
        let hi = round_half_up(xl * m as i128, 1i128 << 31);
        round_half_away(hi, 1i128 << (-s).max(0)) as i32
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
                reference(x, m, s),
                "x={x} m={m} s={s}"
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
