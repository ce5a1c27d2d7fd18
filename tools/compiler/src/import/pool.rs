//! Pooling, 2-D: `MaxPool`, `AveragePool` and `GlobalAveragePool`.

use super::registry::{AttrSupport, Format, OpImporter, attr};
use super::{Importer, attrs, input, out_dim, window_pads};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// Attributes of both window pools (`count_include_pad` is AveragePool's alone).
const WINDOW: &[AttrSupport] = &[
    attr(
        "kernel_shape",
        "required; 2 values >= 1, at most the padded input",
    ),
    attr("strides", "2 values >= 1; default 1"),
    attr(
        "pads",
        "4 values >= 0, the start pads smaller than the window; default 0",
    ),
    attr("auto_pad", "NOTSET, VALID, SAME_UPPER, SAME_LOWER"),
    attr("dilations", "1 only"),
    attr("ceil_mode", "0 or 1"),
];

/// The pooling ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "MaxPool",
        inputs: (1, 1),
        attributes: WINDOW,
        formats: &[Format::Float, Format::Qdq],
        note: "2-D only: input [1, C, H, W]; the Indices output is not supported",
        import: window_pool,
    },
    OpImporter {
        op_type: "AveragePool",
        inputs: (1, 1),
        attributes: &[
            attr(
                "kernel_shape",
                "required; 2 values >= 1, at most the padded input",
            ),
            attr("strides", "2 values >= 1; default 1"),
            attr(
                "pads",
                "4 values >= 0, the start pads smaller than the window; default 0",
            ),
            attr("auto_pad", "NOTSET, VALID, SAME_UPPER, SAME_LOWER"),
            attr("dilations", "1 only"),
            attr("ceil_mode", "0 or 1"),
            attr("count_include_pad", "0 or 1"),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "2-D only: input [1, C, H, W]",
        import: window_pool,
    },
    OpImporter {
        op_type: "GlobalAveragePool",
        inputs: (1, 1),
        attributes: &[],
        formats: &[Format::Float, Format::Qdq],
        note: "2-D only: input [1, C, H, W], output [1, C, 1, 1]",
        import: global_average_pool,
    },
];

/// `MaxPool` or `AveragePool`, told apart by `n.op_type`.
fn window_pool(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let kernel = attrs::pair(n, "kernel_shape", None, 1)?;
    let strides = attrs::pair(n, "strides", Some([1, 1]), 1)?;
    if attrs::ints(n, "dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
        bail!("dilated pooling is not supported");
    }
    if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
        bail!("the Indices output is not supported");
    }
    let pads = window_pads(n, [h, w], kernel, strides, [1, 1])?;
    let ceil = attrs::flag(n, "ceil_mode")?;
    let oh = out_dim(h, kernel[0], strides[0], pads[0], pads[2], 1, ceil)?;
    let ow = out_dim(w, kernel[1], strides[1], pads[1], pads[3], 1, ceil)?;
    if pads[0] >= kernel[0] || pads[1] >= kernel[1] {
        bail!("padding must be smaller than the window");
    }
    let op = if n.op_type == "MaxPool" {
        Op::MaxPool {
            kernel,
            strides,
            pads,
        }
    } else {
        Op::AvgPool {
            kernel,
            strides,
            pads,
            count_include_pad: attrs::flag(n, "count_include_pad")?,
        }
    };
    imp.push(n, op, vec![x], vec![1, c, oh, ow])?;
    Ok(())
}

/// `GlobalAveragePool`.
fn global_average_pool(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, _, _] = imp.image(x)?;
    imp.push(n, Op::GlobalAvgPool, vec![x], vec![1, c, 1, 1])?;
    Ok(())
}
