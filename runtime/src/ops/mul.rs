//! Element-wise product of two int8 inputs (TFLM's int8 Mul): `out = zp_out + (x - zp_x) *
//! (y - zp_y) * M`, with `M = s_x * s_y / s_out`. The second input has the first's shape or is
//! one value per channel (`[1, 1, C]`, broadcast over the positions: squeeze-excitation's
//! `x * sigmoid(fc(pool(x)))`). Kernels: `kernels/mul/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::kernels::{self, Rescale};

/// Op-specific words of a Mul entry.
pub mod word {
    /// Zero point of the second input.
    pub const IN2_ZP: usize = 0;
    /// Output multiplier of the product.
    pub const M: usize = 1;
    /// Output shift.
    pub const S: usize = 2;
    /// Word count.
    pub const COUNT: usize = 3;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (2, 2),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare,
    prepare_entry,
    invoke,
};

/// Whether the second input is one value per channel.
fn broadcast(m: &crate::model::Model<'_>, op: &crate::model::OpInfo) -> bool {
    let t = m.tensor_rec(m.op_input(op, 1));
    t.h == 1 && t.w == 1
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    super::lut::same_geometry(p)?;
    let y = p.model.tensor_rec(p.model.op_input(p.op, 1));
    if !((y.h == 1 && y.w == 1) || (y.h == p.output.h && y.w == p.output.w)) {
        return Err(p.err(
            "inputs",
            "the second input must have the first's shape or be 1x1",
        ));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    super::lut::same_channels(e)?;
    if e.active_in(1) != e.en.in_ch() {
        return Err(e.err("in_ch", "mul inputs differ in active channels"));
    }
    let zp = e.en.extra(word::IN2_ZP);
    if zp != e.zp_of(1) || !(-128..=127).contains(&zp) {
        return Err(e.err("in2_zp", "differs from the producer's output zero point"));
    }
    if !valid_multiplier(e.en.extra(word::M), e.en.extra(word::S)) {
        return Err(e.err("mul", "multiplier or shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let ch = c.in_shape.c;
    let b = broadcast(c.model, c.op);
    let y = c.input(1, if b { ch } else { c.in_shape.len() })?;
    kernels::active::mul(
        c.x,
        c.en.in_zp(),
        y,
        b.then_some(ch),
        Rescale {
            zero_point: c.en.extra(word::IN2_ZP),
            multiplier: c.en.extra(word::M),
            shift: c.en.extra(word::S),
        },
        c.stage,
        out,
    );
    Ok(())
}
