//! Reductions over the spatial axes: ReduceMean becomes global average pooling, ReduceMax a
//! max pool over the whole map.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, axis, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The reductions.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "ReduceMean",
        inputs: (1, 2),
        attributes: &[
            attr(
                "axes",
                "[2, 3] (or -2, -1), as attribute or (opset 18) constant input",
            ),
            attr("keepdims", "0 or 1; default 1"),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "over height and width of [1, C, H, W]: global average pooling",
        import: |imp, n| reduce(imp, n, false),
    },
    OpImporter {
        op_type: "ReduceMax",
        inputs: (1, 2),
        attributes: &[
            attr(
                "axes",
                "[2, 3] (or -2, -1), as attribute or (opset 18) constant input",
            ),
            attr("keepdims", "0 or 1; default 1"),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "over height and width of [1, C, H, W]: a max pool over the whole map",
        import: |imp, n| reduce(imp, n, true),
    },
];

/// The axes of a reduction, from the attribute or the second input, normalised to `0..rank`.
fn axes(imp: &Importer, n: &pb::NodeProto, rank: usize) -> Result<Vec<usize>> {
    let raw: Vec<i64> = match attrs::ints(n, "axes")? {
        Some(a) => a.to_vec(),
        None => match imp.const_ints(input(n, 1))? {
            Some(a) => a,
            None => bail!("reducing over every axis is not supported (give axes [2, 3])"),
        },
    };
    let mut out: Vec<usize> = raw.iter().map(|&a| axis(a, rank)).collect::<Result<_>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn reduce(imp: &mut Importer, n: &pb::NodeProto, max: bool) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    if axes(imp, n, 4)? != [2, 3] {
        bail!("only a reduction over the spatial axes [2, 3] is supported");
    }
    let shape = if attrs::int(n, "keepdims", 1)? != 0 {
        vec![1, c, 1, 1]
    } else {
        vec![1, c]
    };
    let op = if max {
        Op::MaxPool {
            kernel: [h, w],
            strides: [1, 1],
            pads: [0; 4],
        }
    } else {
        Op::GlobalAvgPool
    };
    imp.push(n, op, vec![x], shape)?;
    Ok(())
}
