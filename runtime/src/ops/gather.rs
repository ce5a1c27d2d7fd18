//! Channel selection: output channel `j` is input channel `start + j * step` (ONNX Slice and
//! Split over the channel axis, and Gather of constant indices in arithmetic progression),
//! copied with a requantization (the identity when the compiler keeps the input's
//! quantization, as it does). It picks fixed channel indices, so its input must not be slimmed.
//! Kernels: `kernels/gather/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::kernels::{self, Rescale};

/// Attribute words of a channel selection.
pub mod attr {
    /// First input channel.
    pub const START: usize = 0;
    /// Input channels between two output channels (>= 1).
    pub const STEP: usize = 1;
}

/// Op-specific words of an entry.
pub mod word {
    /// Multiplier of the copy.
    pub const M: usize = 0;
    /// Shift of the copy.
    pub const S: usize = 1;
    /// Word count.
    pub const COUNT: usize = 2;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare,
    prepare_entry,
    invoke,
};

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    super::lut::same_geometry(p)?;
    let (start, step) = (
        p.op.attrs[attr::START] as usize,
        p.op.attrs[attr::STEP] as usize,
    );
    // Saturating: a hostile record must not wrap around on 32-bit targets.
    let last = (p.output.c.max(1) - 1)
        .saturating_mul(step)
        .saturating_add(start);
    if step == 0 || last >= p.input.c {
        return Err(p.err("attrs", "selected channels outside the input, or step 0"));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    if e.en.in_ch() != e.p.input.c || e.en.out_ch() != e.p.output.c {
        return Err(e.err(
            "in_ch",
            "a channel selection reads and writes whole tensors",
        ));
    }
    if !valid_multiplier(e.en.extra(word::M), e.en.extra(word::S)) {
        return Err(e.err("gather", "multiplier or shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    kernels::active::gather_channels(
        c.x,
        c.in_shape.c,
        c.op.attrs[attr::START] as usize,
        c.op.attrs[attr::STEP] as usize,
        Rescale {
            zero_point: c.en.in_zp(),
            multiplier: c.en.extra(word::M),
            shift: c.en.extra(word::S),
        },
        c.stage,
        out,
        c.out_shape.c,
    );
    Ok(())
}
