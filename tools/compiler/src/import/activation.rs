//! Activations: `Relu` and `Clip`, fused into their producer's output stage by `act_fuse`.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, anyhow, bail};
use tract_onnx::pb;

/// The activation ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Relu",
        inputs: (1, 1),
        attributes: &[],
        formats: &[Format::Float, Format::Qdq],
        note: "on a computed tensor",
        import: relu,
    },
    OpImporter {
        op_type: "Clip",
        inputs: (1, 3),
        attributes: &[
            attr("min", "opset < 11: float; default -inf"),
            attr("max", "opset < 11: float; default +inf"),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "opset >= 11: bounds are optional constant inputs; min <= max, not NaN",
        import: clip,
    },
];

/// `Relu`.
fn relu(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let s = imp.shape(x);
    imp.push(n, Op::Relu, vec![x], s)?;
    Ok(())
}

/// `Clip`.
fn clip(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let bound = |me: &Importer, name: &str, default: f32| -> Result<f32> {
        if name.is_empty() {
            return Ok(default);
        }
        let v = me.raw(name)?.1.to_f32();
        v.first()
            .copied()
            .ok_or_else(|| anyhow!("empty bound {name}"))
    };
    let (lo, hi) = if imp.opset < 11 {
        (
            attrs::float(n, "min", f32::NEG_INFINITY)?,
            attrs::float(n, "max", f32::INFINITY)?,
        )
    } else {
        (
            bound(imp, input(n, 1), f32::NEG_INFINITY)?,
            bound(imp, input(n, 2), f32::INFINITY)?,
        )
    };
    if lo.is_nan() || hi.is_nan() || lo > hi {
        bail!("bounds must be ordered numbers, got min {lo} and max {hi}");
    }
    let s = imp.shape(x);
    imp.push(n, Op::Clip(lo, hi), vec![x], s)?;
    Ok(())
}
