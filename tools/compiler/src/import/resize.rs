//! Resize (and the deprecated Upsample) over the spatial axes: nearest and bilinear.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use edgeslim_runtime::kernels::ResizeGeometry;
use tract_onnx::pb;

/// The resize op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Resize",
    inputs: (1, 4),
    attributes: &[
        attr("mode", "nearest or linear (bilinear); default nearest"),
        attr(
            "coordinate_transformation_mode",
            "half_pixel, pytorch_half_pixel, asymmetric, align_corners; default half_pixel",
        ),
        attr(
            "nearest_mode",
            "round_prefer_floor, round_prefer_ceil, floor, ceil; default round_prefer_floor",
        ),
        attr("antialias", "0 only"),
    ],
    formats: &[Format::Float, Format::Qdq],
    note: "[1, C, H, W]; constant scales [1, 1, sh, sw] or sizes [1, C, h, w]",
    import: resize,
}];

/// `v` as an exact fraction `num / den` with a power-of-two denominator (every finite f32 is
/// one), both at most 2^24.
fn fraction(v: f32) -> Option<[u32; 2]> {
    if !(v.is_finite() && v > 0.0) {
        return None;
    }
    (0..=24).find_map(|k| {
        let d = (1u64 << k) as f64;
        let n = v as f64 * d;
        (n.fract() == 0.0 && n >= 1.0 && n <= (1u64 << 24) as f64).then_some([n as u32, d as u32])
    })
}

fn resize(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let linear = match attrs::string(n, "mode")?.as_str() {
        "" | "nearest" => false,
        "linear" | "bilinear" => true,
        other => bail!("mode {other} is not supported (nearest, linear)"),
    };
    let coord = match attrs::string(n, "coordinate_transformation_mode")?.as_str() {
        "" | "half_pixel" => 0,
        "pytorch_half_pixel" => 1,
        "asymmetric" => 2,
        "align_corners" => 3,
        other => bail!("coordinate_transformation_mode {other} is not supported"),
    };
    let nearest = match attrs::string(n, "nearest_mode")?.as_str() {
        "" | "round_prefer_floor" => 0,
        "round_prefer_ceil" => 1,
        "floor" => 2,
        "ceil" => 3,
        other => bail!("nearest_mode {other} is not supported"),
    };
    if attrs::int(n, "antialias", 0)? != 0 {
        bail!("antialias is not supported");
    }
    if attrs::ints(n, "axes")?.is_some() {
        bail!("the axes attribute is not supported");
    }
    // opset 10: (X, scales); later: (X, roi, scales, sizes).
    let (scales_in, sizes_in) = if imp.opset < 11 {
        (input(n, 1), "")
    } else {
        (input(n, 2), input(n, 3))
    };
    let values = |imp: &Importer, name: &str| -> Result<Vec<f32>> {
        if name.is_empty() {
            return Ok(vec![]);
        }
        Ok(imp.raw(name)?.1.to_f32())
    };
    let scales = values(imp, scales_in)?;
    let sizes = values(imp, sizes_in)?;
    let (oh, ow, scale) = match (scales.as_slice(), sizes.as_slice()) {
        ([n0, c0, sh, sw], []) => {
            if *n0 != 1.0 || *c0 != 1.0 {
                bail!("only height and width may be scaled, got scales {scales:?}");
            }
            let (Some(fh), Some(fw)) = (fraction(*sh), fraction(*sw)) else {
                bail!("scales {scales:?} must be positive and exact fractions up to 2^24");
            };
            let oh = (h as f64 * *sh as f64).floor() as usize;
            let ow = (w as f64 * *sw as f64).floor() as usize;
            (oh, ow, [fh, fw])
        }
        (_, [n0, c0, oh, ow]) => {
            if *n0 != 1.0 || *c0 != c as f32 || *oh < 1.0 || *ow < 1.0 {
                bail!("sizes {sizes:?} must keep batch and channels and be >= 1");
            }
            let (oh, ow) = (*oh as usize, *ow as usize);
            (oh, ow, [[oh as u32, h as u32], [ow as u32, w as u32]])
        }
        _ => bail!(
            "expects constant scales of 4 values or sizes of 4 values, got {scales:?} and {sizes:?}"
        ),
    };
    if oh == 0 || ow == 0 || oh > 1 << 16 || ow > 1 << 16 || h > 1 << 16 || w > 1 << 16 {
        bail!("output size {oh}x{ow} out of range");
    }
    let g = ResizeGeometry {
        linear,
        coord,
        nearest,
        scale,
    };
    imp.push(n, Op::Resize(g), vec![x], vec![1, c, oh, ow])?;
    Ok(())
}
