//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// `max` (or with `min`, the minimum) of `requant(a - a_zp)` and `requant(b - b_zp)`, each by
/// its own rescale to the output's scale, then the output stage.
pub fn minmax(
    min: bool,
    (a, ra): (&[i8], Rescale),
    (b, rb): (&[i8], Rescale),
    stage: OutputStage,
    output: &mut [i8],
) {
    for (j, o) in output.iter_mut().enumerate() {
        let p =
            multiply_by_quantized_multiplier(a[j] as i32 - ra.zero_point, ra.multiplier, ra.shift);
        let q =
            multiply_by_quantized_multiplier(b[j] as i32 - rb.zero_point, rb.multiplier, rb.shift);
        *o = stage.finish(if min { p.min(q) } else { p.max(q) });
    }
}
