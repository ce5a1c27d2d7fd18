//! int8 softmax exactly as TFLM's reference `SoftmaxInt8` (gemmlowp fixed point): the output
//! has scale 1/256 and zero point -128.

use crate::quant::{rounding_divide_by_pot, srdhm};

const SCALED_DIFF_INTEGER_BITS: i32 = 5;
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// `x * 2^exponent`, saturating (gemmlowp `SaturatingRoundingMultiplyByPOT`).
#[inline]
fn mul_pot(x: i32, exponent: i32) -> i32 {
    if exponent >= 0 {
        let e = exponent.min(31) as u32;
        let min = i32::MIN >> e;
        let max = i32::MAX >> e;
        if x > max {
            i32::MAX
        } else if x < min {
            i32::MIN
        } else {
            x << e
        }
    } else {
        rounding_divide_by_pot(x, -exponent)
    }
}

/// Change the integer bits of a fixed-point raw value from `src` to `dst`.
#[inline]
fn rescale(x: i32, src: i32, dst: i32) -> i32 {
    mul_pot(x, src - dst)
}

/// `exp(a)` for `a` in `[-1/4, 0)`, Q0.31 in and out.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const CONSTANT_1_OVER_3: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28);
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = mul_pot(x4, -2);
    let poly = mul_pot(
        srdhm(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2),
        -1,
    );
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// `exp(a)` for `a <= 0` given with 5 integer bits; result Q0.31.
fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 31 - SCALED_DIFF_INTEGER_BITS;
    let one_quarter = 1i32 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        SCALED_DIFF_INTEGER_BITS,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if SCALED_DIFF_INTEGER_BITS > exponent {
            let shift = FRACTIONAL_BITS + exponent;
            if remainder & (1 << shift) != 0 {
                result = srdhm(result, multiplier);
            }
        }
    }
    if a == 0 { i32::MAX } else { result }
}

/// `1 / (1 + x)` for `x` in `[0, 1)`, Q0.31 in and out (Newton-Raphson).
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let sum = a as i64 + i32::MAX as i64;
    let half_denominator = ((sum + if sum >= 0 { 1 } else { -1 }) / 2) as i32;
    const C48_OVER_17: i32 = 1_515_870_810;
    const CNEG32_OVER_17: i32 = -1_010_580_540;
    const F2_ONE: i32 = 1 << 29;
    let mut x = C48_OVER_17.wrapping_add(srdhm(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = F2_ONE.wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(rescale(srdhm(x, one_minus), 4, 2));
    }
    // ExactMulByPot<-1> turns Q2 into Q1 without touching the raw value.
    rescale(x, 1, 0)
}

/// TFLM `GetReciprocal`: `(reciprocal Q0.31, num_bits_over_unit)`.
fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one =
        ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1u32 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

/// Softmax over each row of `row_len` values (the channels of one position).
pub fn softmax(
    input: &[i8],
    row_len: usize,
    beta_multiplier: i32,
    beta_left_shift: i32,
    diff_min: i32,
    output: &mut [i8],
) {
    if row_len == 0 {
        return;
    }
    let ls = beta_left_shift.clamp(0, 30);
    for (row, out) in input
        .chunks_exact(row_len)
        .zip(output.chunks_exact_mut(row_len))
    {
        let max = row.iter().copied().max().unwrap_or(0) as i32;
        let scaled = |x: i8| -> Option<i32> {
            let diff = x as i32 - max;
            (diff >= diff_min).then(|| srdhm(diff.saturating_mul(1 << ls), beta_multiplier))
        };
        let mut sum_of_exps: i32 = 0;
        for &x in row {
            if let Some(d) = scaled(x) {
                sum_of_exps = sum_of_exps.wrapping_add(rescale(
                    exp_on_negative_values(d),
                    0,
                    ACCUMULATION_INTEGER_BITS,
                ));
            }
        }
        let (shifted_scale, num_bits_over_unit) =
            get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        for (o, &x) in out.iter_mut().zip(row) {
            *o = match scaled(x) {
                Some(d) => {
                    let exp_in_0 = exp_on_negative_values(d);
                    let unsat = rounding_divide_by_pot(
                        srdhm(shifted_scale, exp_in_0),
                        num_bits_over_unit + 31 - 8,
                    );
                    (unsat - 128).clamp(-128, 127) as i8
                }
                None => i8::MIN,
            };
        }
    }
}
