//! The portable variant: safe Rust for every target, the reference's bytes (see
//! `kernels/common.rs` for what it changes against the reference).

use crate::kernels::common::{BLOCK, dot4};
use crate::kernels::{ChannelQuant, OutputStage};
use crate::quant::multiply_by_quantized_multiplier;

/// Fully connected layer; same contract and bytes as
/// [`crate::kernels::reference::fully_connected`].
///
/// Four outputs at a time, one dot product per position (or one over the whole input when
/// every column is active, since rows are then contiguous in both input and weights).
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
    let zp = in_zp as i16;
    let row = positions * i_full;
    let n_out = output.len();
    // With every column active, a weight row and the input are each one contiguous run.
    let (runs, run_len) = if in_ch == i_full {
        (1, positions * in_ch)
    } else {
        (positions, in_ch)
    };
    let mut o0 = 0;
    while o0 < n_out {
        // A partial last block repeats the last output (computed, not stored).
        let rows: [usize; BLOCK] = core::array::from_fn(|j| (o0 + j).min(n_out - 1) * row);
        let mut acc = [0i32; BLOCK];
        for r in 0..runs {
            let xs = &input[r * in_ch..][..run_len];
            dot4(
                &mut acc,
                xs,
                zp,
                core::array::from_fn(|j| &weights[rows[j] + r * i_full..]),
            );
        }
        let n = BLOCK.min(n_out - o0);
        for (j, (out, &a)) in output[o0..o0 + n].iter_mut().zip(&acc).enumerate() {
            let (bias, mult, shift) = chan.get(o0 + j);
            *out = stage.finish(multiply_by_quantized_multiplier(
                a.wrapping_add(bias),
                mult,
                shift,
            ));
        }
        o0 += BLOCK;
    }
}
