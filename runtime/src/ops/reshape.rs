//! Reshape / Flatten: a view. Its output tensor aliases its input's storage (the plan checks
//! in `Model::parse` hold that), so invoking it moves no data.

use super::{PrepareEntry, Registration, no_prepare, no_words};
use crate::error::Error;

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: no_words,
    prepare: no_prepare,
    prepare_entry,
    invoke: |_, _| Ok(()),
};

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    let (t, out) = (e.p.input, e.p.output);
    if t.h * t.w * e.en.in_ch() != out.h * out.w * e.en.out_ch() {
        return Err(e.err("out_ch", "reshape changes the element count"));
    }
    if e.en.out_zp() != e.en.in_zp() {
        return Err(e.err("out_zp", "a reshape keeps the quantization"));
    }
    Ok(())
}
