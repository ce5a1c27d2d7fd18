//! The Helium variant (see `conv/arm_mve.rs` for the instructions and why the bytes are the
//! reference's): two weight rows at a time against the raw input with `VMLADAVA.S8`, their
//! sums taken in the same pass (`VADDVA.S8`, `mve::dot_1x2_sums`), and the zero point's term
//! `-zp * sum(w)` added once per output.

use crate::kernels::conv::arm_dsp::dsp::requantize;
use crate::kernels::conv::arm_mve::mve::dot_1x2_sums;
use crate::kernels::{ChannelQuant, OutputStage};

/// Fully connected layer; same contract and bytes as
/// [`crate::kernels::reference::fully_connected`].
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
    let row = positions * i_full;
    let n_out = output.len();
    // With every column active, a weight row and the input are each one contiguous run.
    let (runs, run_len) = if in_ch == i_full {
        (1, positions * in_ch)
    } else {
        (positions, in_ch)
    };
    let mut o = 0;
    while o < n_out {
        // Two rows at a time; an odd last row pairs with itself (computed, not stored).
        let o1 = (o + 1).min(n_out - 1);
        let (mut d, mut s) = ([0i32; 2], [0i32; 2]);
        for r in 0..runs {
            let x = &input[r * in_ch..][..run_len];
            let w0 = &weights[o * row + r * i_full..][..run_len];
            let w1 = &weights[o1 * row + r * i_full..][..run_len];
            let (dr, sr) = dot_1x2_sums(x, w0, w1, run_len);
            for k in 0..2 {
                d[k] = d[k].wrapping_add(dr[k]);
                s[k] = s[k].wrapping_add(sr[k]);
            }
        }
        for (k, oo) in [o, o1].into_iter().enumerate().take(o1 + 1 - o) {
            let acc = d[k].wrapping_sub(in_zp.wrapping_mul(s[k]));
            output[oo] = stage.finish(requantize(acc, chan.get(oo)));
        }
        o += 2;
    }
}
