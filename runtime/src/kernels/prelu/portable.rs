//! The portable variant: one 256-entry table per channel of the reference's own results
//! (`common::per_channel_lookup`), then one lookup per value; the reference's bytes.

use crate::kernels::common::per_channel_lookup;
use crate::kernels::{ChannelQuant, OutputStage};
use crate::quant::multiply_by_quantized_multiplier;

/// Parametric ReLU; same contract and bytes as [`crate::kernels::reference::prelu`].
#[allow(clippy::too_many_arguments)]
pub fn prelu(
    x: &[i8],
    channels: usize,
    x_zp: i32,
    pos: (i32, i32),
    alpha: &[i8],
    quant: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
) {
    let positions = output.len().checked_div(channels).unwrap_or(0);
    // A table costs 256 requantizations per channel: worth it past that many positions.
    if positions < 256 || output.len() != positions * channels {
        return super::reference::prelu(x, channels, x_zp, pos, alpha, quant, stage, output);
    }
    per_channel_lookup(x, channels, output, |c, x| {
        let v = x as i32 - x_zp;
        stage.finish(if v >= 0 {
            multiply_by_quantized_multiplier(v, pos.0, pos.1)
        } else {
            let (_, m, s) = quant.get(c);
            multiply_by_quantized_multiplier(v * alpha[c] as i32, m, s)
        })
    });
}
