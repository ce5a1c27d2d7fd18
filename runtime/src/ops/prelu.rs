//! Parametric ReLU with one slope per channel (ONNX PRelu with a `[C, 1, 1]` slope; TFLM's
//! int8 PRelu): `out = zp_out + (x - zp_x) * M_pos` where `x >= zp_x`, else
//! `zp_out + (x - zp_x) * alpha[c] * M_neg[c]`. The slopes are the op's int8 weights (shape
//! `[C, 1, 1, 1]`, one scale per channel), their multipliers the per-channel table (the bias
//! word is unused, 0), so first-k slimming reads the first slopes. Kernels: `kernels/prelu/`.

use super::{Invoke, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::kernels::{self, ChannelQuant};

/// Op-specific words of a PRelu entry.
pub mod word {
    /// Multiplier of the non-negative side.
    pub const M_POS: usize = 0;
    /// Shift of the non-negative side.
    pub const S_POS: usize = 1;
    /// Word count.
    pub const COUNT: usize = 2;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: true,
    extra_words: |_| word::COUNT,
    prepare: |p| {
        super::lut::same_geometry(p)?;
        if p.op.wshape[1..] != [1, 1, 1] {
            return Err(p.err("wshape", "PRelu slopes are [C, 1, 1, 1]"));
        }
        Ok(())
    },
    prepare_entry,
    invoke,
};

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    super::lut::same_channels(e)?;
    if !valid_multiplier(e.en.extra(word::M_POS), e.en.extra(word::S_POS)) {
        return Err(e.err("prelu", "multiplier or shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let ch = c.out_shape.c;
    kernels::active::prelu(
        c.x,
        ch,
        c.en.in_zp(),
        (c.en.extra(word::M_POS), c.en.extra(word::S_POS)),
        kernels::as_i8(c.model.weights(c.op)),
        ChannelQuant::new(c.model.channel_bytes(&c.en, ch)),
        c.stage,
        out,
    );
    Ok(())
}
