//! Squeeze and Unsqueeze: views (reshapes) that keep the batch dimension 1.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, axis, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The squeeze ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Squeeze",
        inputs: (1, 2),
        attributes: &[attr(
            "axes",
            "opset < 13 (later: constant input); every axis of size 1 when absent",
        )],
        formats: &[Format::Float, Format::Qdq],
        note: "a view; the batch dimension stays",
        import: |imp, n| squeeze(imp, n, false),
    },
    OpImporter {
        op_type: "Unsqueeze",
        inputs: (1, 2),
        attributes: &[attr("axes", "opset < 13 (later: constant input)")],
        formats: &[Format::Float, Format::Qdq],
        note: "a view; the result must be [1, C, H, W] or [1, K]",
        import: |imp, n| squeeze(imp, n, true),
    },
];

/// The `axes` of a (un)squeeze from the attribute or the second input.
fn axes(imp: &Importer, n: &pb::NodeProto) -> Result<Option<Vec<i64>>> {
    match attrs::ints(n, "axes")? {
        Some(a) => Ok(Some(a.to_vec())),
        None => imp.const_ints(input(n, 1)),
    }
}

fn squeeze(imp: &mut Importer, n: &pb::NodeProto, unsqueeze: bool) -> Result<()> {
    let x = imp.tensor_in(input(n, 0))?;
    let s = imp.shape(x);
    let axes = axes(imp, n)?;
    let out: Vec<usize> = if unsqueeze {
        let Some(axes) = axes else {
            bail!("axes are required");
        };
        let rank = s.len() + axes.len();
        let mut pos: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?;
        pos.sort_unstable();
        pos.dedup();
        if pos.len() != axes.len() {
            bail!("repeated axes {axes:?}");
        }
        let mut it = s.iter();
        (0..rank)
            .map(|i| {
                if pos.contains(&i) {
                    1
                } else {
                    *it.next().unwrap_or(&1)
                }
            })
            .collect()
    } else {
        let drop: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&v| axis(v, s.len())).collect::<Result<_>>()?,
            None => (1..s.len()).filter(|&i| s[i] == 1).collect(),
        };
        if let Some(&a) = drop.iter().find(|&&a| s[a] != 1) {
            bail!("axis {a} has size {}, not 1", s[a]);
        }
        if drop.contains(&0) {
            bail!("the batch dimension must stay");
        }
        s.iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, &d)| d)
            .collect()
    };
    if out.first() != Some(&1) {
        bail!("the batch dimension must stay 1, got {out:?}");
    }
    imp.push(n, Op::Reshape, vec![x], out)?;
    Ok(())
}
