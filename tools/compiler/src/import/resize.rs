//! Resize (and the deprecated Upsample) over the spatial axes: nearest and bilinear.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use edgeslim_runtime::kernels::ResizeGeometry;
use edgeslim_runtime::kernels::resize::reference::{linear_taps, nearest_index};
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
        attr(
            "axes",
            "the axes scales and sizes list (opset 18); default all four",
        ),
        attr(
            "keep_aspect_ratio_policy",
            "stretch, not_larger, not_smaller (sizes only); default stretch",
        ),
    ],
    formats: &[Format::Float, Format::Qdq],
    note: "[1, C, H, W]; constant scales or sizes of height and width (batch and channels kept)",
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

/// ONNX's align_corners maps output `x` to `x * (n_in - 1) / (L - 1)` where `L = n_in *
/// scale` is the output length before flooring (ONNX's reference and tract), while the
/// runtime's align_corners divides by the whole output length minus one. When some `L` is not
/// a whole number (scales such as 0.6), the same mapping is asymmetric (`x / s'`) with
/// `s' = (L - 1) / (n_in - 1)`. When that fraction needs more than 24 bits it is replaced by
/// its closest fraction within 24 bits, kept only if every output position reads the same
/// inputs with the same weights (linear) or the same input (nearest) as with the exact one.
/// Other coordinate modes are returned unchanged.
fn align_corners_by_scale(
    coord: u32,
    g: &ResizeGeometry,
    n_in: [usize; 2],
    n_out: [usize; 2],
) -> Result<(u32, [[u32; 2]; 2])> {
    let scale = g.scale;
    let whole = |a: usize| (n_in[a] as u64 * scale[a][0] as u64).is_multiple_of(scale[a][1] as u64);
    if coord != 3 || (whole(0) && whole(1)) {
        return Ok((coord, scale));
    }
    let mut s = [[1u32, 1u32]; 2];
    for a in 0..2 {
        let [num, den] = scale[a].map(u64::from);
        let n = n_in[a] as u64;
        // L - 1 = (n * num - den) / den; L <= 1 (one output, coordinate 0) or one input
        // (every coordinate clamps to 0) reads input 0 whatever the scale.
        if n <= 1 || n * num <= den || n_out[a] <= 1 {
            continue;
        }
        // s' = p / q; the input coordinate of x is x * q / p
        let (p, q) = (n * num - den, (n - 1) * den);
        let [pa, qa] = closest_fraction(p, q, 1 << 24);
        let same = (0..n_out[a] as i64).all(|x| {
            let exact = (x * q as i64, p as i64);
            let approx = (x * qa as i64, pa as i64);
            if g.linear {
                linear_taps(exact, n_in[a]) == linear_taps(approx, n_in[a])
            } else {
                nearest_index(exact, g.nearest, n_in[a])
                    == nearest_index(approx, g.nearest, n_in[a])
            }
        });
        if pa == 0 || qa == 0 || !same {
            bail!(
                "align_corners with scale {num}/{den} over {n} inputs maps outputs by \
                 {q}/{p}, which 24-bit fractions do not reproduce"
            );
        }
        s[a] = [pa as u32, qa as u32];
    }
    Ok((2, s))
}

/// The fraction closest to `p / q` (`p, q >= 1`, at most 2^42) whose numerator and
/// denominator are at most `max`: `p / q` reduced when it fits, else the best of the last
/// continued-fraction convergent and semiconvergent within `max`.
fn closest_fraction(p: u64, q: u64, max: u64) -> [u64; 2] {
    let (p, q, max) = (p as u128, q as u128, max as u128);
    // convergents h/k: (h0, k0) the one before (h1, k1)
    let (mut h0, mut h1, mut k0, mut k1) = (0u128, 1u128, 1u128, 0u128);
    let (mut a, mut b) = (p, q);
    while b != 0 {
        let t = a / b;
        let (h2, k2) = (t * h1 + h0, t * k1 + k0);
        if h2 > max || k2 > max {
            // the largest semiconvergent within max, if closer than (h1, k1)
            let lim = |m: u128, c: u128| (max - c).checked_div(m).unwrap_or(u128::MAX);
            let ts = lim(h1, h0).min(lim(k1, k0));
            let (hs, ks) = (ts * h1 + h0, ts * k1 + k0);
            // |h/k - p/q| compared across the two as |h q - p k| times the other's k
            let closer = (hs * q).abs_diff(p * ks) * k1 < (h1 * q).abs_diff(p * k1) * ks;
            if ts >= 1 && closer {
                return [hs as u64, ks as u64];
            }
            return [h1 as u64, k1 as u64];
        }
        (h0, h1, k0, k1) = (h1, h2, k1, k2);
        (a, b) = (b, a - t * b);
    }
    [h1 as u64, k1 as u64]
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
    // opset 18: scales and sizes may list some axes only (`axes`), the others keep their size.
    let axes: Vec<usize> = match attrs::ints(n, "axes")? {
        None => (0..4).collect(),
        Some(a) => {
            let v = a
                .iter()
                .map(|&x| super::axis(x, 4))
                .collect::<Result<Vec<_>>>()?;
            if (1..v.len()).any(|i| v[..i].contains(&v[i])) {
                bail!("axes {a:?} repeat an axis");
            }
            v
        }
    };
    let policy = attrs::string(n, "keep_aspect_ratio_policy")?;
    if !matches!(
        policy.as_str(),
        "" | "stretch" | "not_larger" | "not_smaller"
    ) {
        bail!("keep_aspect_ratio_policy {policy} is not supported");
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
    let dims = [1, c, h, w];
    // Per axis of [N, C, H, W]: the scale as an exact fraction (output over input) and the
    // output length, as ONNX's reference computes them.
    let mut scale = [[1u32, 1u32]; 4];
    let mut out = dims;
    match (scales.as_slice(), sizes.as_slice()) {
        (s, []) if s.len() == axes.len() => {
            for (&a, &v) in axes.iter().zip(s) {
                let Some(f) = fraction(v) else {
                    bail!("scales {scales:?} must be positive and exact fractions up to 2^24");
                };
                scale[a] = f;
                // floor(dim * scale), exactly
                out[a] = (dims[a] as u64 * f[0] as u64 / f[1] as u64) as usize;
            }
        }
        (_, s) if s.len() == axes.len() => {
            let mut ints = Vec::with_capacity(s.len());
            for &v in s {
                if !(v >= 1.0 && v <= (1u32 << 16) as f32 && v.fract() == 0.0) {
                    bail!("sizes {sizes:?} must be whole numbers from 1 to 65536");
                }
                ints.push(v as u32);
            }
            for (&a, &o) in axes.iter().zip(&ints) {
                scale[a] = [o, dims[a] as u32];
                out[a] = o as usize;
            }
            if matches!(policy.as_str(), "not_larger" | "not_smaller") {
                // One scale for every listed axis: the smallest (not_larger) or the largest
                // (not_smaller) of theirs, compared exactly; each length rounded half up.
                let lt = |x: [u32; 2], y: [u32; 2]| {
                    (x[0] as u64 * y[1] as u64) < (y[0] as u64 * x[1] as u64)
                };
                let mut pick = scale[axes[0]];
                for &a in &axes[1..] {
                    if lt(scale[a], pick) == (policy == "not_larger") {
                        pick = scale[a];
                    }
                }
                for &a in &axes {
                    scale[a] = pick;
                    out[a] = ((2 * dims[a] as u64 * pick[0] as u64 + pick[1] as u64)
                        / (2 * pick[1] as u64)) as usize;
                }
            }
        }
        _ => bail!(
            "expects constant scales or sizes of one value per axis ({} axes), got {scales:?} \
             and {sizes:?}",
            axes.len()
        ),
    }
    if out[0] != 1 || out[1] != c || scale[0][0] != scale[0][1] || scale[1][0] != scale[1][1] {
        bail!(
            "only height and width may be resized, got scales {scales:?}, sizes {sizes:?} \
             (output {out:?})"
        );
    }
    let [_, _, oh, ow] = out;
    if oh == 0 || ow == 0 || oh > 1 << 16 || ow > 1 << 16 || h > 1 << 16 || w > 1 << 16 {
        bail!("output size {oh}x{ow} out of range");
    }
    let mut g = ResizeGeometry {
        linear,
        coord,
        nearest,
        scale: [scale[2], scale[3]],
    };
    (g.coord, g.scale) = align_corners_by_scale(coord, &g, [h, w], [oh, ow])?;
    imp.push(n, Op::Resize(g), vec![x], vec![1, c, oh, ow])?;
    Ok(())
}
