//! Spatial padding (ONNX Pad over the height and width axes): `constant` fills with one value,
//! `reflect` mirrors the tensor without repeating its edge, `edge` repeats the edge. The values
//! are copied with a requantization to the output (the identity when the compiler gives the
//! output the input's quantization, as it does); channels are untouched, so slimming follows
//! the input. Kernels: `kernels/pad/`.

use super::{Invoke, MAX_COORD, Prepare, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::format::attr as fattr;
use crate::kernels::{self, PadMode, Rescale};

/// Attribute words of a Pad record (besides [`fattr::PAD_TOP`] and [`fattr::PAD_LEFT`]; the
/// bottom and right padding follow from the output's size).
pub mod attr {
    /// [`PadMode`](crate::kernels::PadMode) as stored: 0 constant, 1 reflect, 2 edge.
    pub const MODE: usize = 11;
}

/// Op-specific words of a Pad entry.
pub mod word {
    /// The fill value of `constant` mode, int8 in the output's quantization.
    pub const VALUE: usize = 0;
    /// Multiplier of the copy.
    pub const M: usize = 1;
    /// Shift of the copy.
    pub const S: usize = 2;
    /// Word count.
    pub const COUNT: usize = 3;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare,
    prepare_entry,
    invoke,
};

/// The mode of a record.
pub fn mode(op: &crate::model::OpInfo) -> Option<PadMode> {
    PadMode::from_u32(op.attrs[attr::MODE])
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let (t, out, a) = (p.input, p.output, &p.op.attrs);
    let Some(m) = mode(p.op) else {
        return Err(p.err(
            "attrs",
            "pad mode must be 0 (constant), 1 (reflect) or 2 (edge)",
        ));
    };
    let (top, left) = (a[fattr::PAD_TOP] as usize, a[fattr::PAD_LEFT] as usize);
    // The kernels compare output coordinates with the padding as `isize`: the output's sides
    // (hence the input's and the padding) are held within `MAX_COORD`, so no cast changes sign
    // on 32-bit targets.
    if out.h > MAX_COORD || out.w > MAX_COORD {
        return Err(p.err(
            "output",
            "padded output side past the coordinate range (2^31 - 1)",
        ));
    }
    let rest = |o: usize, n: usize, lead: usize| o.checked_sub(n)?.checked_sub(lead);
    let (Some(bottom), Some(right)) = (rest(out.h, t.h, top), rest(out.w, t.w, left)) else {
        return Err(p.err(
            "output",
            "output smaller than the input and its leading padding",
        ));
    };
    if m == PadMode::Reflect && (top.max(bottom) >= t.h || left.max(right) >= t.w) {
        return Err(p.err("attrs", "reflect padding must be smaller than the input"));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    super::lut::same_channels(e)?;
    let x = |w| e.en.extra(w);
    if !(-128..=127).contains(&x(word::VALUE)) || !valid_multiplier(x(word::M), x(word::S)) {
        return Err(e.err(
            "pad",
            "fill value outside int8, or multiplier or shift out of range",
        ));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let a = &c.op.attrs;
    let m = mode(c.op).unwrap_or(PadMode::Constant);
    kernels::active::pad(
        c.x,
        c.in_shape,
        [a[fattr::PAD_TOP] as usize, a[fattr::PAD_LEFT] as usize],
        m,
        c.en.extra(word::VALUE) as i8,
        Rescale {
            zero_point: c.en.in_zp(),
            multiplier: c.en.extra(word::M),
            shift: c.en.extra(word::S),
        },
        c.stage,
        out,
        c.out_shape,
    );
    Ok(())
}
