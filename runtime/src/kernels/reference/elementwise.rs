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
