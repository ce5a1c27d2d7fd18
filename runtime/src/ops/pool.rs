//! MaxPool, AvgPool (with `count_include_pad` and ceil-mode windows) and GlobalAvgPool over
//! NHWC int8, requantizing to the output. Kernels: `kernels/pool/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, check_window, valid_multiplier};
use crate::error::Error;
use crate::format::attr;
use crate::kernels::{self, PoolGeometry, Rescale};
use crate::model::{Entry, OpInfo};

/// Op-specific words of pooling entries.
pub mod word {
    /// Output multiplier.
    pub const M: usize = 0;
    /// Output shift.
    pub const S: usize = 1;
    /// Word count.
    pub const COUNT: usize = 2;
}

pub(crate) const MAX_POOL: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare: prepare_window,
    prepare_entry,
    invoke: |c, out| {
        kernels::active::max_pool(
            &geometry(c.op),
            c.x,
            c.in_shape,
            rescale(&c.en),
            c.stage,
            out,
            c.out_shape,
        );
        Ok(())
    },
};

pub(crate) const AVG_POOL: Registration = Registration {
    invoke: |c, out| {
        kernels::active::avg_pool(
            &geometry(c.op),
            c.x,
            c.in_shape,
            rescale(&c.en),
            c.stage,
            out,
            c.out_shape,
        );
        Ok(())
    },
    ..MAX_POOL
};

pub(crate) const GLOBAL_AVG_POOL: Registration = Registration {
    prepare: |p| {
        if p.output.h != 1 || p.output.w != 1 {
            return Err(p.err("output", "global pooling output must be 1x1"));
        }
        Ok(())
    },
    invoke: global_avg_pool,
    ..MAX_POOL
};

fn global_avg_pool(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    kernels::active::global_avg_pool(c.x, c.in_shape, rescale(&c.en), c.stage, out);
    Ok(())
}

/// The window of a MaxPool or AvgPool record.
pub fn geometry(op: &OpInfo) -> PoolGeometry {
    let a = &op.attrs;
    PoolGeometry {
        kernel: [a[attr::KERNEL_H] as usize, a[attr::KERNEL_W] as usize],
        stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
        pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
        count_include_pad: a[attr::COUNT_INCLUDE_PAD] == 1,
    }
}

/// The requantization of a pooling entry: input zero point and output multiplier.
fn rescale(en: &Entry<'_>) -> Rescale {
    Rescale {
        zero_point: en.in_zp(),
        multiplier: en.extra(word::M),
        shift: en.extra(word::S),
    }
}

fn prepare_window(p: &Prepare<'_, '_>) -> Result<(), Error> {
    let g = geometry(p.op);
    if g.stride.contains(&0) || g.kernel.contains(&0) {
        return Err(p.err("attrs", "kernel and stride must be >= 1"));
    }
    if g.pad[0] >= g.kernel[0] || g.pad[1] >= g.kernel[1] {
        return Err(p.err("attrs", "padding must be smaller than the window"));
    }
    check_window(p, g.kernel, g.stride, g.pad)
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    if e.en.out_ch() != e.en.in_ch() {
        return Err(e.err("out_ch", "pooling keeps the channels"));
    }
    if !valid_multiplier(e.en.extra(word::M), e.en.extra(word::S)) {
        return Err(e.err("pool", "multiplier or shift out of range"));
    }
    Ok(())
}
