//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{ChannelQuant, OutputStage};
use crate::quant::multiply_by_quantized_multiplier;

/// Fully connected layer over an input of `positions` rows of `in_ch` active channels (the
/// NHWC flattening of an `[h, w, c]` tensor, `positions = h * w`).
///
/// `weights` is the stored `[o_full, positions, i_full]` tensor; output `o` reads row `o`,
/// columns `0 .. in_ch` of every position. `acc = bias + sum((x - in_zp) * w)`, requantized.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    input: &[i8],
    positions: usize,
    in_ch: usize,
    in_zp: i32,
    weights: &[i8],
    i_full: usize,
    chan: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
) {
    for (o, out) in output.iter_mut().enumerate() {
        let mut acc: i32 = 0;
        for p in 0..positions {
            let x_row = &input[p * in_ch..(p + 1) * in_ch];
            let w_row = &weights[(o * positions + p) * i_full..][..in_ch];
            for (&x, &w) in x_row.iter().zip(w_row) {
                acc = acc.wrapping_add((x as i32 - in_zp) * w as i32);
            }
        }
        let (bias, mult, shift) = chan.get(o);
        *out = stage.finish(multiply_by_quantized_multiplier(
            acc.wrapping_add(bias),
            mult,
            shift,
        ));
    }
}
