//! Element-wise maximum or minimum of two int8 inputs of equal shape (ONNX Max and Min of two
//! operands): each input is requantized to the output's scale first, then compared, which is
//! exact because rounding to a common scale keeps the order. Kernels: `kernels/minmax/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::kernels::{self, Rescale};

/// Attribute words.
pub mod attr {
    /// 0 maximum, 1 minimum.
    pub const MODE: usize = 0;
}

/// Op-specific words of an entry.
pub mod word {
    /// Zero point of the second input.
    pub const IN2_ZP: usize = 0;
    /// Multiplier of the first input.
    pub const M1: usize = 1;
    /// Shift of the first input.
    pub const S1: usize = 2;
    /// Multiplier of the second input.
    pub const M2: usize = 3;
    /// Shift of the second input.
    pub const S2: usize = 4;
    /// Word count.
    pub const COUNT: usize = 5;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (2, 2),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare,
    prepare_entry,
    invoke,
};

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    super::lut::same_geometry(p)?;
    let y = p.model.tensor_rec(p.model.op_input(p.op, 1));
    if y.h != p.output.h || y.w != p.output.w || p.op.attrs[attr::MODE] > 1 {
        return Err(p.err("inputs", "inputs of one shape, mode 0 (max) or 1 (min)"));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    super::lut::same_channels(e)?;
    let x = |w| e.en.extra(w);
    if e.active_in(1) != e.en.in_ch() || x(word::IN2_ZP) != e.zp_of(1) {
        return Err(e.err("in2_zp", "second input's channels or zero point differ"));
    }
    if !valid_multiplier(x(word::M1), x(word::S1)) || !valid_multiplier(x(word::M2), x(word::S2)) {
        return Err(e.err("minmax", "multiplier or shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let y = c.input(1, c.in_shape.len())?;
    let w = |k| c.en.extra(k);
    kernels::active::minmax(
        c.op.attrs[attr::MODE] == 1,
        (
            c.x,
            Rescale {
                zero_point: c.en.in_zp(),
                multiplier: w(word::M1),
                shift: w(word::S1),
            },
        ),
        (
            y,
            Rescale {
                zero_point: w(word::IN2_ZP),
                multiplier: w(word::M2),
                shift: w(word::S2),
            },
        ),
        c.stage,
        out,
    );
    Ok(())
}
