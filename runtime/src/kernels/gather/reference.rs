//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// At every position, output channel `j < out_c` is input channel `start + j * step` of
/// `in_c`, requantized by `r` and finished by `stage`.
#[allow(clippy::too_many_arguments)]
pub fn gather_channels(
    input: &[i8],
    in_c: usize,
    start: usize,
    step: usize,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_c: usize,
) {
    for (p, row) in output.chunks_exact_mut(out_c).enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            let v = input[p * in_c + start + j * step] as i32 - r.zero_point;
            *o = stage.finish(multiply_by_quantized_multiplier(v, r.multiplier, r.shift));
        }
    }
}
