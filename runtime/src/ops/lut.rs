//! Element-wise int8 function by a 256-entry table, `out = table[x + 128]`: TensorFlow Lite
//! Micro's approach for int8 Sigmoid, Tanh, HardSwish and LeakyRelu. The compiler evaluates
//! the float function at each of the 256 input values of each width's input quantization and
//! stores the quantized results (fused activation included) in that width's entry, so every
//! function costs one lookup per value and the result is exact to the float function rounded
//! once. Kernels: `kernels/lut/`.

use super::{Invoke, Prepare, PrepareEntry, Registration};
use crate::error::Error;
use crate::kernels;

/// Op-specific words of a Lut entry.
pub mod word {
    /// First word of the table: 256 int8 outputs, for inputs -128..=127 in order.
    pub const TABLE: usize = 0;
    /// Bytes of the table.
    pub const TABLE_BYTES: usize = 256;
    /// Word count.
    pub const COUNT: usize = TABLE_BYTES / 4;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare: same_geometry,
    prepare_entry: same_channels,
    invoke,
};

/// An element-wise op's output has its input's height and width.
pub(crate) fn same_geometry(p: &Prepare<'_, '_>) -> Result<(), Error> {
    if p.input.h != p.output.h || p.input.w != p.output.w {
        return Err(p.err("output", "an element-wise op keeps height and width"));
    }
    Ok(())
}

/// An element-wise op's active output channels are its input's.
pub(crate) fn same_channels(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    if e.en.out_ch() != e.en.in_ch() {
        return Err(e.err("out_ch", "an element-wise op keeps the channels"));
    }
    Ok(())
}

/// The table of an entry (256 bytes: the parser checked the entry's size).
pub fn table<'a>(en: &crate::model::Entry<'a>) -> &'a [i8] {
    kernels::as_i8(en.extra_bytes(word::TABLE, word::TABLE_BYTES))
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let t = table(&c.en);
    let t: &[i8; word::TABLE_BYTES] = t.try_into().map_err(|_| {
        crate::error::invalid(
            crate::error::Section::Params,
            c.index as u32,
            "table",
            "short",
        )
    })?;
    kernels::active::lut(c.x, t, out);
    Ok(())
}
