use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Element-wise add of two int8 tensors of equal length, as TFLM's int8 Add: both inputs are
/// shifted left by `left_shift`, rescaled to a common scale, summed, and rescaled to the
/// output.
#[allow(clippy::too_many_arguments)]
pub fn add(
    a: &[i8],
    ra: Rescale,
    b: &[i8],
    rb: Rescale,
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let ls = left_shift.clamp(0, 30);
    for ((o, &x), &y) in output.iter_mut().zip(a).zip(b) {
        let xa = (x as i32 - ra.zero_point) << ls;
        let yb = (y as i32 - rb.zero_point) << ls;
        let sa = multiply_by_quantized_multiplier(xa, ra.multiplier, ra.shift);
        let sb = multiply_by_quantized_multiplier(yb, rb.multiplier, rb.shift);
        let raw = multiply_by_quantized_multiplier(sa.saturating_add(sb), out_mult, out_shift);
        *o = stage.finish(raw);
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
