//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Element-wise product as TFLM's int8 Mul: `(x - x_zp) * (y - r.zero_point)` rescaled by
/// `r.multiplier, r.shift`, then the output stage. `y` has `x`'s length, or with
/// `broadcast = Some(c)` holds `c` values, one per channel, repeated at every position.
pub fn mul(
    x: &[i8],
    x_zp: i32,
    y: &[i8],
    broadcast: Option<usize>,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
) {
    for (j, o) in output.iter_mut().enumerate() {
        let yj = match broadcast {
            Some(c) => y[j % c],
            None => y[j],
        };
        let p = (x[j] as i32 - x_zp) * (yj as i32 - r.zero_point);
        *o = stage.finish(multiply_by_quantized_multiplier(p, r.multiplier, r.shift));
    }
}
