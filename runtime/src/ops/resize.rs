//! Spatial resize (ONNX Resize over height and width): nearest (four rounding rules) and
//! bilinear, with ONNX's coordinate transformations `half_pixel`, `pytorch_half_pixel`,
//! `asymmetric` and `align_corners`. Scales are stored as exact fractions (`output / input`),
//! so every output position maps to an exact rational input coordinate: the kernels agree on
//! every target, and nearest mode is exactly ONNX's. Bilinear weights are that coordinate's
//! fraction rounded to 1/1024. Channels are untouched: slimming follows the input.
//! Kernels: `kernels/resize/`.

use super::{Invoke, Prepare, PrepareEntry, Registration, valid_multiplier};
use crate::error::Error;
use crate::kernels::{self, Rescale, ResizeGeometry};

/// Attribute words of a Resize record.
pub mod attr {
    /// 0 nearest, 1 linear.
    pub const MODE: usize = 0;
    /// Coordinate transformation: 0 half_pixel, 1 pytorch_half_pixel, 2 asymmetric,
    /// 3 align_corners.
    pub const COORD: usize = 1;
    /// Nearest rounding: 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil.
    pub const NEAREST: usize = 2;
    /// Vertical scale numerator (`scale = num / den`, output over input).
    pub const H_NUM: usize = 3;
    /// Vertical scale denominator.
    pub const H_DEN: usize = 4;
    /// Horizontal scale numerator.
    pub const W_NUM: usize = 5;
    /// Horizontal scale denominator.
    pub const W_DEN: usize = 6;
}

/// Op-specific words of a Resize entry.
pub mod word {
    /// Multiplier of the output (bilinear: includes the 2^-20 of the weights).
    pub const M: usize = 0;
    /// Shift of the output.
    pub const S: usize = 1;
    /// Word count.
    pub const COUNT: usize = 2;
}

/// Fractional bits of each bilinear weight.
pub const WEIGHT_BITS: u32 = 10;

pub(crate) const REGISTRATION: Registration = Registration {
    inputs: (1, 1),
    has_weights: false,
    extra_words: |_| word::COUNT,
    prepare,
    prepare_entry,
    invoke,
};

/// The geometry of a record, or `None` when an attribute is out of range.
pub fn geometry(op: &crate::model::OpInfo) -> Option<ResizeGeometry> {
    let a = &op.attrs;
    let g = ResizeGeometry {
        linear: match a[attr::MODE] {
            0 => false,
            1 => true,
            _ => return None,
        },
        coord: a[attr::COORD],
        nearest: a[attr::NEAREST],
        scale: [
            [a[attr::H_NUM], a[attr::H_DEN]],
            [a[attr::W_NUM], a[attr::W_DEN]],
        ],
    };
    let fraction_ok = |f: [u32; 2]| f[0] >= 1 && f[1] >= 1 && f[0] <= 1 << 24 && f[1] <= 1 << 24;
    (g.coord <= 3 && g.nearest <= 3 && g.scale.iter().all(|&f| fraction_ok(f))).then_some(g)
}

fn prepare(p: &Prepare<'_, '_>) -> Result<(), Error> {
    if geometry(p.op).is_none() {
        return Err(p.err(
            "attrs",
            "mode, coordinate mode or nearest rule out of range, or a scale fraction outside 1..=2^24",
        ));
    }
    // Sizes are bounded by the arena check; keep the coordinate arithmetic in range.
    if [p.input.h, p.input.w, p.output.h, p.output.w]
        .iter()
        .any(|&d| d > 1 << 16)
    {
        return Err(p.err("output", "resize dimensions above 65536"));
    }
    Ok(())
}

fn prepare_entry(e: &PrepareEntry<'_, '_>) -> Result<(), Error> {
    super::lut::same_channels(e)?;
    if !valid_multiplier(e.en.extra(word::M), e.en.extra(word::S)) {
        return Err(e.err("resize", "multiplier or shift out of range"));
    }
    Ok(())
}

fn invoke(c: &Invoke<'_, '_>, out: &mut [i8]) -> Result<(), Error> {
    let g = geometry(c.op).ok_or(crate::error::invalid(
        crate::error::Section::Ops,
        c.index as u32,
        "attrs",
        "resize attributes",
    ))?;
    kernels::active::resize(
        &g,
        c.x,
        c.in_shape,
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
