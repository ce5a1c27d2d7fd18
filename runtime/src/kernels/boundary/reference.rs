//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

/// Round half to even, as ONNX `QuantizeLinear` (valid for `|v| < 2^22`; callers clamp).
#[inline]
fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it leaves no fraction bits.
    (v + MAGIC) - MAGIC
}

/// Quantize float to int8: `clamp(round_half_even(x / scale) + zero_point)`, as ONNX
/// `QuantizeLinear`. NaN maps to the zero point.
pub fn quantize(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) {
    for (o, &x) in output.iter_mut().zip(input) {
        let v = x / scale;
        let v = if v.is_nan() {
            0.0
        } else {
            v.clamp(-1.0e6, 1.0e6)
        };
        *o = (round_ties_even(v) as i32 + zero_point).clamp(-128, 127) as i8;
    }
}

/// Dequantize int8 to float: `(q - zero_point) * scale`, as ONNX `DequantizeLinear`.
pub fn dequantize(input: &[i8], scale: f32, zero_point: i32, output: &mut [f32]) {
    for (o, &q) in output.iter_mut().zip(input) {
        *o = (q as i32 - zero_point) as f32 * scale;
    }
}
