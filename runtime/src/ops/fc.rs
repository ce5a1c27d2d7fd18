//! FullyConnected over every NHWC position of its input (weights `[out, positions, in, 1]`),
//! with per-output-channel requantization. Kernels: `kernels/fc/`.

use super::{Invoke, Prepare, Registration, no_words};
use crate::error::Error;
use crate::kernels::{self, ChannelQuant};

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: true,
    extra_words: no_words,
    prepare,
    prepare_entry: |e| {
        if e.en.in_ch() > e.p.op.wshape[2] {
            return Err(e.err("in_ch", "more input channels than weight columns"));
        }
        Ok(())
    },
    invoke,
};

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let (op, t, out) = (p.op, p.input, p.output);
    if op.wshape[1] != t.h * t.w || op.wshape[3] != 1 || out.h != 1 || out.w != 1 {
        return Err(p.err(
            "wshape",
            "fully connected weights must be [out, positions, in, 1]",
        ));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    kernels::active::fully_connected(
        c.x,
        c.in_rec.h * c.in_rec.w,
        c.in_shape.c,
        c.en.in_zp(),
        kernels::as_i8(c.model.weights(c.op)),
        c.op.wshape[2],
        ChannelQuant::new(c.model.channel_bytes(&c.en, c.out_shape.c)),
        c.stage,
        out,
    );
    Ok(())
}
