//! The portable variant: a product with a per-channel (or scalar) second operand is a map of
//! the first operand's value per channel, looked up in one 256-entry table per channel of the
//! reference's own results (`common::per_channel_lookup`); the reference's bytes. Products of
//! two tensors run the reference.

use crate::kernels::common::per_channel_lookup;
use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Element-wise product; same contract and bytes as [`crate::kernels::reference::mul`].
pub fn mul(
    x: &[i8],
    x_zp: i32,
    y: &[i8],
    broadcast: Option<usize>,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
) {
    match broadcast {
        Some(c) if c > 0 && output.len() / c >= 256 && output.len().is_multiple_of(c) => {
            per_channel_lookup(x, c, output, |ch, v| {
                let p = (v as i32 - x_zp) * (y[ch] as i32 - r.zero_point);
                stage.finish(multiply_by_quantized_multiplier(p, r.multiplier, r.shift))
            })
        }
        _ => super::reference::mul(x, x_zp, y, broadcast, r, stage, output),
    }
}
