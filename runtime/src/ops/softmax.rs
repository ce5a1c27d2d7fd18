//! Softmax over the channels of each position (TFLM's int8 fixed-point algorithm; the output
//! has scale 1/256 and zero point -128). Kernels: `kernels/softmax/`.

use super::{Invoke, PrepareEntry, Registration, no_prepare, valid_multiplier};
use crate::error::Error;
use crate::kernels;

/// Op-specific words of a Softmax entry.
pub mod word {
    /// Input-beta multiplier.
    pub const BETA_M: usize = 0;
    /// Input-beta left shift.
    pub const BETA_SHIFT: usize = 1;
    /// Smallest difference to the row maximum that contributes.
    pub const DIFF_MIN: usize = 2;
    /// Word count.
    pub const COUNT: usize = 3;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare: no_prepare,
    prepare_entry,
    invoke,
};

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let (t, out, en) = (e.p.input, e.p.output, &e.en);
    if en.out_ch() != en.in_ch() || t.h != out.h || t.w != out.w || en.out_zp() != -128 {
        return Err(e.err(
            "softmax",
            "softmax keeps the shape; output zero point is -128",
        ));
    }
    let (m, s) = (en.extra(word::BETA_M), en.extra(word::BETA_SHIFT));
    if !valid_multiplier(m, 0) || !(0..=30).contains(&s) || en.extra(word::DIFF_MIN) > 0 {
        return Err(e.err("softmax", "beta multiplier, shift or diff_min out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    kernels::active::softmax(
        c.x,
        c.in_shape.c,
        c.en.extra(word::BETA_M),
        c.en.extra(word::BETA_SHIFT),
        c.en.extra(word::DIFF_MIN),
        out,
    );
    Ok(())
}
