//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Channel concatenation: at every one of `positions` positions, the channels of each input
/// in order, each rescaled to the output (`(x - zp_i) * M_i`, plus the output zero point).
///
/// `inputs[i]` is `(data, channels, rescale)`; the output has the sum of their channels.
pub fn concat(
    inputs: &[(&[i8], usize, Rescale)],
    positions: usize,
    stage: OutputStage,
    output: &mut [i8],
) {
    let out_c: usize = inputs.iter().map(|i| i.1).sum();
    for p in 0..positions {
        let mut off = p * out_c;
        for &(data, c, r) in inputs {
            for (o, &x) in output[off..off + c]
                .iter_mut()
                .zip(&data[p * c..(p + 1) * c])
            {
                let v = multiply_by_quantized_multiplier(
                    x as i32 - r.zero_point,
                    r.multiplier,
                    r.shift,
                );
                *o = stage.finish(v);
            }
            off += c;
        }
    }
}
