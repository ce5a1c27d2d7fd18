//! `Concat` over channels.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The concatenation op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Concat",
    inputs: (1, usize::MAX),
    attributes: &[attr("axis", "1 (or its negative equivalent) only")],
    formats: &[Format::Float, Format::Qdq],
    note: "computed tensors equal in every dimension but the channels",
    import: concat,
}];

/// `Concat`.
fn concat(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let xs: Vec<usize> = n
        .input
        .iter()
        .map(|i| imp.activation(i, "input"))
        .collect::<Result<_>>()?;
    let Some(&x0) = xs.first() else {
        bail!("no inputs");
    };
    let s0 = imp.shape(x0);
    let mut axis = attrs::int(n, "axis", 1)?;
    if axis < 0 {
        axis = axis.saturating_add(s0.len() as i64);
    }
    if axis != 1 || s0.len() < 2 {
        bail!("only concatenation over channels (axis 1) is supported");
    }
    let mut out = s0.clone();
    out[1] = 0;
    for &x in &xs {
        let s = imp.shape(x);
        if s.len() != s0.len() || s[0] != s0[0] || s[2..] != s0[2..] {
            bail!("inputs differ in spatial shape ({s0:?}, {s:?})");
        }
        out[1] += s[1];
    }
    imp.push(n, Op::Concat, xs, out)?;
    Ok(())
}
