//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{ChannelQuant, OutputStage};
use crate::quant::multiply_by_quantized_multiplier;

/// PRelu over `[positions, channels]` int8 values: `v = x - x_zp`; `v >= 0` is rescaled by
/// `pos = (multiplier, shift)`, `v < 0` by `v * alpha[c]` and channel `c`'s multiplier and
/// shift from `quant` (its bias is unused). `alpha` and `quant` hold at least `channels`
/// entries.
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
    for (j, o) in output.iter_mut().enumerate() {
        let c = j % channels;
        let v = x[j] as i32 - x_zp;
        let r = if v >= 0 {
            multiply_by_quantized_multiplier(v, pos.0, pos.1)
        } else {
            let (_, m, s) = quant.get(c);
            multiply_by_quantized_multiplier(v * alpha[c] as i32, m, s)
        };
        *o = stage.finish(r);
    }
}
