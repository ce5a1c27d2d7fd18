//! `Softmax` over channels.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The softmax op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Softmax",
    inputs: (1, 1),
    attributes: &[attr(
        "axis",
        "the channels (1, or -1 of a [1, C] tensor); default -1 (opset >= 13), else 1",
    )],
    formats: &[Format::Float, Format::Qdq],
    note: "over the channels of a [1, C] or [1, C, 1, 1] tensor",
    import: softmax,
}];

/// `Softmax`.
fn softmax(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let s = imp.shape(x);
    let default = if imp.opset >= 13 { -1 } else { 1 };
    let mut axis = attrs::int(n, "axis", default)?;
    if axis < 0 {
        axis = axis.saturating_add(s.len() as i64);
    }
    let spatial: usize = s.iter().skip(2).product();
    if axis != 1 || spatial != 1 {
        bail!("only softmax over channels of a [1, C] (or [1, C, 1, 1]) tensor is supported");
    }
    imp.push(n, Op::Softmax, vec![x], s)?;
    Ok(())
}
