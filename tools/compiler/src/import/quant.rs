//! QDQ: `QuantizeLinear` and `DequantizeLinear` resolve into quantization annotations on the
//! activations they wrap, and into dequantized constants (int8 values kept) on weights.

use super::registry::{AttrSupport, Format, OpImporter, attr};
use super::{Importer, Value, attrs, input, output};
use crate::ir::{Op, Unary};
use anyhow::{Result, bail};
use tract_onnx::pb;

/// Attributes of both ops that the importer restricts.
const BLOCK: AttrSupport = attr("block_size", "0 only (no blocked quantization)");

/// The QDQ ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "QuantizeLinear",
        inputs: (2, 3),
        attributes: &[
            attr("axis", "ignored: activations are quantized per tensor"),
            BLOCK,
            attr("output_dtype", "uint8 or int8 (the zero point's type)"),
        ],
        formats: &[Format::Qdq],
        note: "of a computed tensor: one scale and one uint8/int8 zero point (uint8 shifted \
               by 128), rounded by a table op of its own when other nodes read the tensor in \
               float; of a constant: the real values are kept",
        import: quantize_linear,
    },
    OpImporter {
        op_type: "DequantizeLinear",
        inputs: (2, 3),
        attributes: &[
            attr(
                "axis",
                "constants: the axis of per-axis scales, within the rank; default 1",
            ),
            BLOCK,
        ],
        formats: &[Format::Qdq],
        note: "of a computed tensor: one scale and zero point; of a constant (weights, int32 \
               bias): per tensor or per axis, int8 values with zero point 0 kept exactly",
        import: dequantize_linear,
    },
];

/// Reject blocked quantization and output types other than 8-bit integers.
fn check_attributes(n: &pb::NodeProto) -> Result<()> {
    if attrs::int(n, "block_size", 0)? != 0 {
        bail!("blocked quantization (block_size) is not supported");
    }
    let t = attrs::int(n, "output_dtype", 0)?;
    if ![0, 2, 3].contains(&t) {
        bail!("output_dtype {t} is not supported (uint8 or int8)");
    }
    Ok(())
}

/// `QuantizeLinear`.
fn quantize_linear(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let inp = |k| input(n, k);
    check_attributes(n)?;
    if imp.is_const(inp(0)) {
        // Quantize of a constant: keep the real values.
        let t = imp.tensor_in(inp(0))?;
        imp.values.insert(output(n), Value::Tensor(t));
    } else {
        let x = imp.activation(inp(0), "input")?;
        let mut q = imp.qparams(inp(1), Some(inp(2)))?;
        if inp(2).is_empty() {
            // No zero point: 0 of the output type, uint8 unless `output_dtype` says int8
            // (uint8 0 is int8 -128 in the runtime's int8 space).
            q.zero_point = if attrs::int(n, "output_dtype", 0)? == 3 {
                0
            } else {
                -128
            };
        }
        // The file rounds `x` for this node's readers only. When other nodes read `x` in float
        // (QOperator: a Relu output feeding both the next QLinearConv and a float
        // ConvTranspose), or `x` is already int8 at another quantization, the rounding becomes
        // an op of its own, a 256-entry table that rounds each int8 value of `x` as
        // QuantizeLinear does, and `x` keeps its own quantization. A float sum read by later
        // Adds is left to `flatten_float_add_chains`.
        let read_in_float = imp.float_reads.contains(inp(0)) && !imp.add_outputs.contains(inp(0));
        let requantized = imp.g.tensors[x].quant.is_some_and(|p| p != q);
        if read_in_float || requantized {
            let s = imp.shape(x);
            let y = imp.push(
                n,
                Op::Unary(Unary::Affine { mul: 1.0, add: 0.0 }),
                vec![x],
                s,
            )?;
            imp.annotate(y, q);
            imp.values.insert(output(n), Value::Quantized(y));
        } else {
            imp.annotate(x, q);
            imp.values.insert(output(n), Value::Quantized(x));
        }
    }
    Ok(())
}

/// `DequantizeLinear`.
fn dequantize_linear(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let inp = |k| input(n, k);
    check_attributes(n)?;
    match imp.value(inp(0))?.clone() {
        Value::Quantized(x) | Value::Tensor(x) if imp.g.tensors[x].konst.is_none() => {
            let mut q = imp.qparams(inp(1), Some(inp(2)))?;
            if inp(2).is_empty() {
                // No zero point: 0 of the input's type, which its QuantizeLinear decided.
                q.zero_point = match imp.g.tensors[x].quant {
                    Some(p) => p.zero_point,
                    None => bail!(
                        "input {} has no zero point and no QuantizeLinear before it: its \
                         integer type (and so the zero point 0 stands for) is unknown",
                        inp(0)
                    ),
                };
            }
            imp.annotate(x, q);
            imp.values.insert(output(n), Value::Tensor(x));
        }
        _ => {
            let axis = attrs::int(n, "axis", 1)?;
            let rank = imp.raw(inp(0))?.0.len();
            let per_axis = imp.raw(inp(1))?.1.len() > 1;
            let axis = if per_axis {
                let a = if axis < 0 {
                    axis.saturating_add(rank as i64)
                } else {
                    axis
                };
                match usize::try_from(a) {
                    Ok(a) if a < rank => a,
                    _ => bail!("axis {axis} is out of range for a rank-{rank} constant"),
                }
            } else {
                0
            };
            imp.dequant_const(&output(n), inp(0), inp(1), Some(inp(2)), axis)?;
            imp.g.prequantized = true;
        }
    }
    Ok(())
}
