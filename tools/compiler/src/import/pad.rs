//! Pad over the spatial axes: constant, reflect or edge.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The padding op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Pad",
    inputs: (1, 4),
    attributes: &[
        attr("mode", "constant, reflect or edge; default constant"),
        attr(
            "pads",
            "opset < 11 (later: constant input); height and width only, >= 0",
        ),
        attr(
            "value",
            "opset < 11 (later: optional constant input); default 0",
        ),
    ],
    formats: &[Format::Float, Format::Qdq],
    note: "[1, C, H, W]; reflect pads smaller than the input; an axes input (opset 18) names the \
           axes the pads are for",
    import: pad,
}];

fn pad(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let mode = match attrs::string(n, "mode")?.as_str() {
        "" | "constant" => 0,
        "reflect" => 1,
        "edge" => 2,
        other => bail!("mode {other} is not supported (constant, reflect, edge)"),
    };
    let (p, value): (Vec<i64>, f32) = if imp.opset < 11 {
        (
            attrs::ints(n, "pads")?
                .map(<[i64]>::to_vec)
                .unwrap_or_default(),
            attrs::finite(n, "value", 0.0)?,
        )
    } else {
        let p = imp.const_ints(input(n, 1))?.unwrap_or_default();
        let v = if input(n, 2).is_empty() {
            0.0
        } else {
            let v = imp.raw(input(n, 2))?.1.to_f32();
            match v.as_slice() {
                [v] if v.is_finite() => *v,
                _ => bail!("constant_value must be one finite value"),
            }
        };
        (p, v)
    };
    // opset 18: `axes` lists the axes `pads` is for ([begins, ends]); the others get none.
    let p = match imp.const_ints(input(n, 3))? {
        None => p,
        Some(axes) => {
            if p.len() != 2 * axes.len() {
                bail!("pads {p:?} must have two values per axis of axes {axes:?}");
            }
            let mut full = vec![0i64; 8];
            let mut seen = [false; 4];
            for (i, &a) in axes.iter().enumerate() {
                let a = super::axis(a, 4)?;
                if std::mem::replace(&mut seen[a], true) {
                    bail!("axes {axes:?} repeat an axis");
                }
                full[a] = p[i];
                full[a + 4] = p[i + axes.len()];
            }
            full
        }
    };
    let pads: Vec<usize> = match p.as_slice() {
        [0, 0, t, l, 0, 0, b, r] => [*t, *l, *b, *r]
            .iter()
            .map(|&v| usize::try_from(v))
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("negative pads {p:?} (cropping) are not supported"))?,
        _ => bail!("pads must be 8 values padding only height and width, got {p:?}"),
    };
    let pads = [pads[0], pads[1], pads[2], pads[3]];
    if mode == 1 && (pads[0].max(pads[2]) >= h || pads[1].max(pads[3]) >= w) {
        bail!("reflect pads {pads:?} must be smaller than the input ({h}x{w})");
    }
    let shape = vec![1, c, h + pads[0] + pads[2], w + pads[1] + pads[3]];
    imp.push(n, Op::Pad { pads, mode, value }, vec![x], shape)?;
    Ok(())
}
