//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Element-wise add of int8 tensors of equal length, as TFLM's int8 Add generalised to
/// `inputs.len()` operands: every input is shifted left by `left_shift`, rescaled to a common
/// scale, the results are summed, and the sum is rescaled to the output. Two inputs are
/// exactly TFLM's Add; more come from a chain of float Adds flattened by the compiler.
/// Every input must be at least as long as `output`.
pub fn add(
    inputs: &[(&[i8], Rescale)],
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let ls = left_shift.clamp(0, 30);
    for (j, o) in output.iter_mut().enumerate() {
        let mut acc = 0i32;
        for &(x, r) in inputs {
            let v = (x[j] as i32 - r.zero_point).wrapping_shl(ls as u32);
            acc = acc.saturating_add(multiply_by_quantized_multiplier(v, r.multiplier, r.shift));
        }
        *o = stage.finish(multiply_by_quantized_multiplier(acc, out_mult, out_shift));
    }
}
