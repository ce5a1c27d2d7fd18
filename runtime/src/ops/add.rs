//! Add of 2 to [`MAX_ADD_INPUTS`](crate::format::MAX_ADD_INPUTS) equal-shape inputs, each
//! rescaled to a common scale by a signed multiplier (a negative one subtracts: ONNX Sub; a
//! scaled one averages: ONNX Mean) (TFLM's int8 Add; more than two inputs come from a chain of
//! float Adds the compiler flattened). Kernels: `kernels/add/`.

use super::{Invoke, PrepareEntry, Registration, no_prepare, valid_multiplier};
use crate::error::Error;
use crate::format::MAX_ADD_INPUTS;
use crate::kernels::{self, Rescale};

/// Op-specific words of an Add entry (after the common header).
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
    /// Output multiplier.
    pub const MO: usize = 5;
    /// Output shift.
    pub const SO: usize = 6;
    /// Left shift applied to every input before scaling.
    pub const LEFT_SHIFT: usize = 7;
    /// Word count of a two-input Add.
    pub const COUNT: usize = 8;
    /// Each further input `k >= 2` (up to [`MAX_ADD_INPUTS`](crate::format::MAX_ADD_INPUTS))
    /// appends `(zero point, multiplier, shift)`: its zero point at
    /// `COUNT + EXTRA * (k - 2) + ZP`.
    pub const ZP: usize = 0;
    /// Multiplier of a further input (see [`ZP`]).
    pub const M: usize = 1;
    /// Shift of a further input (see [`ZP`]).
    pub const S: usize = 2;
    /// Words per further input.
    pub const EXTRA: usize = 3;

    /// `(zero point, multiplier, shift)` word offsets of input `k` (`k = 0` takes its zero point
    /// from the entry's `IN_ZP`, reported here as `None`).
    pub const fn input(k: usize) -> (Option<usize>, usize, usize) {
        match k {
            0 => (None, M1, S1),
            1 => (Some(IN2_ZP), M2, S2),
            _ => {
                let b = COUNT + EXTRA * (k - 2);
                (Some(b + ZP), b + M, b + S)
            }
        }
    }
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (2, MAX_ADD_INPUTS),
    has_weights: false,
    extra_words: |n| word::COUNT + word::EXTRA * n.saturating_sub(2),
    prepare: no_prepare,
    prepare_entry,
    invoke,
};

/// An input's multiplier may be negative (a Sub, or a Mean's scaled input with a sign): the
/// kernels apply it through the same requantization, which is defined for either sign.
fn valid_input_multiplier(m: i32, s: i32) -> bool {
    m != i32::MIN && valid_multiplier(m.abs(), s)
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let (op, out, in_t) = (e.p.op, e.p.output, e.p.input);
    let in_ch = e.en.in_ch();
    let same_shape = (0..op.n_inputs).all(|k| {
        let t = e.input(k);
        e.active_in(k) == in_ch && t.h == out.h && t.w == out.w
    });
    if !same_shape || e.en.out_ch() != in_ch || in_t.h != out.h || in_t.w != out.w {
        return Err(e.err("in_ch", "add inputs and output must have equal shapes"));
    }
    let x = |w| e.en.extra(w);
    for k in 1..op.n_inputs {
        let (zp, m, s) = word::input(k);
        if zp.is_some_and(|w| x(w) != e.zp_of(k)) {
            return Err(e.err("in_zp", "differs from the producer's output zero point"));
        }
        if zp.is_some_and(|w| !(-128..=127).contains(&x(w))) {
            return Err(e.err("in2_zp", "an input zero point is outside int8"));
        }
        if !valid_input_multiplier(x(m), x(s)) {
            return Err(e.err("add", "multiplier or shift out of range"));
        }
    }
    if !valid_input_multiplier(x(word::M1), x(word::S1))
        || !valid_multiplier(x(word::MO), x(word::SO))
        || !(0..=20).contains(&x(word::LEFT_SHIFT))
    {
        return Err(e.err("add", "multiplier, shift or left shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let none = Rescale {
        zero_point: 0,
        multiplier: 0,
        shift: 0,
    };
    let mut parts: [(&[i8], Rescale); MAX_ADD_INPUTS] = [(&[], none); MAX_ADD_INPUTS];
    let w = |k| c.en.extra(k);
    let n = c.op.n_inputs.min(parts.len());
    for (k, part) in parts.iter_mut().enumerate().take(n) {
        let (zp, mk, sk) = word::input(k);
        *part = (
            c.input(k, c.in_shape.len())?,
            Rescale {
                zero_point: zp.map_or(c.en.in_zp(), w),
                multiplier: w(mk),
                shift: w(sk),
            },
        );
    }
    kernels::active::add(
        &parts[..n],
        w(word::LEFT_SHIFT),
        w(word::MO),
        w(word::SO),
        c.stage,
        out,
    );
    Ok(())
}
