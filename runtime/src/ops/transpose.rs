//! Transpose: a permutation of the stored axes `(h, w, c)`, for the layout changes real
//! exports contain (a detector head's `[1, A, H, W] -> [1, H, W, A]`). The compiler maps the
//! ONNX permutation of an NCHW tensor onto the stored NHWC axes. Channels may move into the
//! spatial axes, so the op reads and writes whole tensors: it cannot follow slimming (its
//! input's channels must be fixed). Kernels: `kernels/transpose/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, no_words};
use crate::error::Error;
use crate::kernels;

/// Attribute words of a Transpose record.
pub mod attr {
    /// `PERM + k`: the input axis (0 h, 1 w, 2 c) that output axis `k` takes.
    pub const PERM: usize = 0;
}

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: no_words,
    prepare,
    prepare_entry,
    invoke,
};

/// The permutation of a record, or `None` when it is not one.
pub fn perm(op: &crate::model::OpInfo) -> Option<[usize; 3]> {
    let p = [
        op.attrs[attr::PERM] as usize,
        op.attrs[attr::PERM + 1] as usize,
        op.attrs[attr::PERM + 2] as usize,
    ];
    let mut seen = [false; 3];
    for &a in &p {
        if a > 2 || seen[a] {
            return None;
        }
        seen[a] = true;
    }
    Some(p)
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let Some(perm) = perm(p.op) else {
        return Err(p.err("attrs", "not a permutation of the axes 0, 1, 2"));
    };
    let dims = [p.input.h, p.input.w, p.input.c];
    if [p.output.h, p.output.w, p.output.c] != [dims[perm[0]], dims[perm[1]], dims[perm[2]]] {
        return Err(p.err("output", "output shape is not the permuted input shape"));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    if e.en.in_ch() != e.p.input.c || e.en.out_ch() != e.p.output.c {
        return Err(e.err("in_ch", "a transpose reads and writes whole tensors"));
    }
    let m = e.p.model;
    let in_scale = m.tensor_quant(m.op_input(e.p.op, 0), e.widths).1;
    if e.en.in_zp() != e.en.out_zp() || e.en.out_scale() != in_scale {
        return Err(e.err("out_zp", "a transpose keeps the quantization"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let p = perm(c.op).unwrap_or([0, 1, 2]);
    kernels::active::transpose(c.x, c.in_shape, p, out);
    Ok(())
}
