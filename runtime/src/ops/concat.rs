//! Concat over channels of 1 to [`MAX_OP_INPUTS`](crate::format::MAX_OP_INPUTS) inputs, each
//! rescaled to the output. Kernels: `kernels/concat/`.

use super::{Invoke, PrepareEntry, Registration, no_prepare, valid_multiplier};
use crate::error::Error;
use crate::format::MAX_OP_INPUTS;
use crate::kernels::{self, Rescale};

/// Op-specific words of a Concat entry: this many per input.
pub mod word {
    /// Active channels of the input.
    pub const CH: usize = 0;
    /// Zero point of the input.
    pub const ZP: usize = 1;
    /// Multiplier of the input.
    pub const M: usize = 2;
    /// Shift of the input.
    pub const S: usize = 3;
    /// Words per input.
    pub const PER_INPUT: usize = 4;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, MAX_OP_INPUTS),
    has_weights: false,
    extra_words: |n| word::PER_INPUT * n,
    prepare: no_prepare,
    prepare_entry,
    invoke,
};

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let out = e.p.output;
    let mut sum = 0usize;
    for k in 0..e.p.op.n_inputs {
        let base = k * word::PER_INPUT;
        let ch = e.en.extra(base + word::CH) as u32 as usize;
        let zp = e.en.extra(base + word::ZP);
        let t = e.input(k);
        if ch != e.active_in(k) || t.h != out.h || t.w != out.w || zp != e.zp_of(k) {
            return Err(e.err("concat", "input channels or shape mismatch"));
        }
        if !(-128..=127).contains(&zp)
            || !valid_multiplier(e.en.extra(base + word::M), e.en.extra(base + word::S))
        {
            return Err(e.err("concat", "zero point, multiplier or shift out of range"));
        }
        // Checked: on 32-bit targets the channels of overlapping (not yet rejected) inputs
        // can add up past `usize`.
        sum = sum
            .checked_add(ch)
            .ok_or(e.err("out_ch", "concat output must hold all input channels"))?;
    }
    if sum != e.en.out_ch() {
        return Err(e.err("out_ch", "concat output must hold all input channels"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let none = Rescale {
        zero_point: 0,
        multiplier: 0,
        shift: 0,
    };
    let mut parts: [(&[i8], usize, Rescale); MAX_OP_INPUTS] = [(&[], 0, none); MAX_OP_INPUTS];
    let positions = c.out_rec.h * c.out_rec.w;
    let n = c.op.n_inputs.min(MAX_OP_INPUTS);
    for (k, part) in parts.iter_mut().enumerate().take(n) {
        let base = k * word::PER_INPUT;
        let ch = c.en.extra(base + word::CH) as u32 as usize;
        *part = (
            c.input(k, positions * ch)?,
            ch,
            Rescale {
                zero_point: c.en.extra(base + word::ZP),
                multiplier: c.en.extra(base + word::M),
                shift: c.en.extra(base + word::S),
            },
        );
    }
    kernels::active::concat(&parts[..n], positions, c.stage, out);
    Ok(())
}
