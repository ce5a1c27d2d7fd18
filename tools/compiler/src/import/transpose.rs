//! Transpose of a `[1, C, H, W]` tensor (batch axis kept).

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The transpose.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Transpose",
    inputs: (1, 1),
    attributes: &[attr(
        "perm",
        "a permutation of 0..4 keeping axis 0; default reversed (not supported)",
    )],
    formats: &[Format::Float, Format::Qdq],
    note: "[1, C, H, W] to [1, ...]; its input's channels are not slimmed",
    import: transpose,
}];

fn transpose(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let Some(p) = attrs::ints(n, "perm")? else {
        bail!("perm is required (the default reverses the batch axis)");
    };
    let perm: Vec<usize> = p.iter().filter_map(|&v| usize::try_from(v).ok()).collect();
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != [0, 1, 2, 3] || perm[0] != 0 {
        bail!("perm {p:?} must permute the axes 0..4 and keep axis 0");
    }
    let dims = [1, c, h, w];
    let shape: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    imp.push(
        n,
        Op::Transpose {
            perm: [perm[0], perm[1], perm[2], perm[3]],
        },
        vec![x],
        shape,
    )?;
    Ok(())
}
