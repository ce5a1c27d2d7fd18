//! Convolution, 2-D: `Conv` (float or QDQ) and `QLinearConv` (QOperator).

use super::registry::{AttrSupport, Format, OpImporter, attr};
use super::{Importer, attrs, input, out_dim, output, window_pads};
use crate::ir::{Const, Op};
use anyhow::{Result, anyhow, bail};
use tract_onnx::pb;

/// Attributes of both convolutions.
const ATTRS: &[AttrSupport] = &[
    attr("strides", "2 values >= 1; default 1"),
    attr("dilations", "2 values >= 1; default 1"),
    attr(
        "group",
        ">= 1, dividing the input and output channels; default 1",
    ),
    attr("pads", "4 values >= 0; default 0"),
    attr("auto_pad", "NOTSET, VALID, SAME_UPPER, SAME_LOWER"),
    attr("kernel_shape", "optional; must equal the weights' [KH, KW]"),
];

/// The convolution ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Conv",
        inputs: (2, 3),
        attributes: ATTRS,
        formats: &[Format::Float, Format::Qdq],
        note: "2-D only: input [1, C, H, W], constant weights [O, C/group, KH, KW], optional \
               constant bias of O values; grouped and depthwise",
        import: conv,
    },
    OpImporter {
        op_type: "QLinearConv",
        inputs: (8, 9),
        attributes: ATTRS,
        formats: &[Format::QOperator],
        note: "as Conv; per-tensor input and output scales, int8 or uint8 weights per tensor or \
               per output channel; an int32 bias needs int8 weights with zero point 0",
        import: qlinear_conv,
    },
];

/// `Conv`.
fn conv(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    convolution(imp, n, false)
}

/// `QLinearConv`.
fn qlinear_conv(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    convolution(imp, n, true)
}

/// Either convolution; `q` for `QLinearConv`.
fn convolution(imp: &mut Importer, n: &pb::NodeProto, q: bool) -> Result<()> {
    let inp = |k| input(n, k);
    let x = imp.activation(inp(0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let wt = if q {
        let xq = imp.qparams(inp(1), Some(inp(2)))?;
        imp.annotate(x, xq);
        imp.dequant_const(&format!("{}/W", n.name), inp(3), inp(4), Some(inp(5)), 0)?
    } else {
        if !imp.is_const(inp(1)) {
            bail!("weight {} is not a constant", inp(1));
        }
        imp.tensor_in(inp(1))?
    };
    let ws = imp.shape(wt);
    let [o, ipg, kh, kw] = match ws.as_slice() {
        [a, b, c2, d] => [*a, *b, *c2, *d],
        _ => bail!("weights must be 4-D (2-D convolution), got {ws:?}"),
    };
    if ws.contains(&0) {
        bail!("weights {ws:?} have an empty dimension");
    }
    if let Some(ks) = attrs::ints(n, "kernel_shape")?
        && ks != [kh as i64, kw as i64]
    {
        bail!("kernel_shape {ks:?} does not match the weights {ws:?}");
    }
    let group = attrs::int(n, "group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| anyhow!("group must be >= 1, got {group}"))?;
    if ipg.checked_mul(group) != Some(c) || o % group != 0 {
        bail!("weights {ws:?} do not match {c} input channels in {group} groups");
    }
    let strides = attrs::pair(n, "strides", Some([1, 1]), 1)?;
    let dilations = attrs::pair(n, "dilations", Some([1, 1]), 1)?;
    let pads = window_pads(n, [h, w], [kh, kw], strides, dilations)?;
    let oh = out_dim(h, kh, strides[0], pads[0], pads[2], dilations[0], false)?;
    let ow = out_dim(w, kw, strides[1], pads[1], pads[3], dilations[1], false)?;
    let mut inputs = vec![x, wt];
    let bias_name = if q { inp(8) } else { inp(2) };
    if !bias_name.is_empty() {
        let b = if q {
            let s_x = imp.g.tensors[x].quant.map_or(1.0, |q| q.scale);
            let (_, bd) = imp.raw(bias_name)?;
            let s_w = imp.g.tensors[wt]
                .konst
                .as_ref()
                .and_then(|c| c.quant.as_ref())
                .map(|q| q.scales.clone())
                .ok_or_else(|| anyhow!("QLinearConv weights must be int8 with zero point 0"))?;
            let bd = bd.to_f32();
            if bd.len() != o || s_w.len() != o {
                bail!("bias {bias_name} must be a constant of {o} values");
            }
            let real = bd.iter().zip(&s_w).map(|(&v, &s)| v * s_x * s).collect();
            imp.add_tensor(
                bias_name,
                vec![o],
                Some(Const {
                    data: real,
                    quant: None,
                }),
            )
        } else {
            imp.tensor_in(bias_name)?
        };
        if imp.g.tensors[b]
            .konst
            .as_ref()
            .is_none_or(|c| c.data.len() != o)
        {
            bail!("bias {bias_name} must be a constant of {o} values");
        }
        inputs.push(b);
    }
    let y = imp.push(
        n,
        Op::Conv {
            strides,
            pads,
            dilations,
            group,
        },
        inputs,
        vec![1, o, oh, ow],
    )?;
    if q {
        let yq = imp.qparams(inp(6), Some(inp(7)))?;
        imp.annotate(y, yq);
        imp.values.insert(output(n), super::Value::Tensor(y));
    }
    Ok(())
}
