//! ConvTranspose (2-D, with groups, stride, dilation, padding and output_padding).

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The transposed convolution.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "ConvTranspose",
    inputs: (2, 3),
    attributes: &[
        attr("strides", "2 values >= 1; default 1"),
        attr("dilations", "2 values >= 1; default 1"),
        attr("pads", "4 values >= 0; default 0"),
        attr("group", ">= 1, dividing the channels; default 1"),
        attr(
            "output_padding",
            "2 values, each below its stride; default 0",
        ),
        attr("kernel_shape", "the weights' when given"),
        attr(
            "auto_pad",
            "NOTSET, VALID, SAME_UPPER, SAME_LOWER (output = input x stride)",
        ),
        attr(
            "output_shape",
            "[h, w]: the unpadded output plus at most an output_padding (at the end); no pads or \
             SAME with it",
        ),
    ],
    formats: &[Format::Float, Format::Qdq],
    note: "[1, C, H, W]; constant weights [C, O / group, KH, KW]",
    import: conv_transpose,
}];

fn conv_transpose(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    if !imp.is_const(input(n, 1)) {
        bail!("weight {} is not a constant", input(n, 1));
    }
    let wt = imp.tensor_in(input(n, 1))?;
    let ws = imp.shape(wt);
    let [ci, opg, kh, kw] = match ws.as_slice() {
        [a, b, c2, d] if [*a, *b, *c2, *d].iter().all(|&v| v >= 1) => [*a, *b, *c2, *d],
        _ => bail!("weights must be 4-D [C, O / group, KH, KW] with no zero dimension, got {ws:?}"),
    };
    let group = usize::try_from(attrs::int(n, "group", 1)?)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| anyhow::anyhow!("group must be >= 1"))?;
    if ci != c || c % group != 0 {
        bail!("weights {ws:?} do not match {c} input channels in {group} groups");
    }
    if let Some(k) = attrs::ints(n, "kernel_shape")?
        && k != [kh as i64, kw as i64]
    {
        bail!("kernel_shape {k:?} differs from the weights' {kh}x{kw}");
    }
    let strides = attrs::pair(n, "strides", Some([1, 1]), 1)?;
    let dilations = attrs::pair(n, "dilations", Some([1, 1]), 1)?;
    let out_pad = attrs::pair(n, "output_padding", Some([0, 0]), 0)?;
    let output_shape = match attrs::ints(n, "output_shape")? {
        None => None,
        Some(&[a, b]) if (1..=1 << 16).contains(&a) && (1..=1 << 16).contains(&b) => {
            Some([a as usize, b as usize])
        }
        Some(v) => bail!("output_shape must be two values from 1 to 65536 ([h, w]), got {v:?}"),
    };
    let auto_pad = attrs::string(n, "auto_pad")?;
    let mut out = [0usize; 2];
    let mut full = [0usize; 2];
    for a in 0..2 {
        if out_pad[a] >= strides[a] && out_pad[a] >= dilations[a] {
            bail!("output_padding {out_pad:?} must be smaller than the stride or dilation");
        }
        let k = [kh, kw][a];
        // the whole transposed convolution, output_padding included, before any padding
        full[a] = ([h, w][a] - 1)
            .checked_mul(strides[a])
            .and_then(|v| v.checked_add((k - 1).checked_mul(dilations[a])? + 1 + out_pad[a]))
            .ok_or_else(|| anyhow::anyhow!("output size overflows"))?;
    }
    let pads = match auto_pad.as_str() {
        "" | "NOTSET" => attrs::pads(n)?,
        "VALID" => [0; 4],
        // ONNX (its reference, as tract): the output is input x stride, the padding split
        // with the odd one at the end (SAME_UPPER) or the start (SAME_LOWER).
        "SAME_UPPER" | "SAME_LOWER" if output_shape.is_none() => {
            let mut p = [0; 4];
            for a in 0..2 {
                let target = [h, w][a]
                    .checked_mul(strides[a])
                    .ok_or_else(|| anyhow::anyhow!("output size overflows"))?;
                let Some(total) = full[a].checked_sub(target) else {
                    bail!(
                        "auto_pad {auto_pad}: the kernel reaches {} positions, fewer than the \
                         {target} of input x stride",
                        full[a]
                    );
                };
                let (small, large) = (total / 2, total - total / 2);
                (p[a], p[a + 2]) = if auto_pad == "SAME_UPPER" {
                    (small, large)
                } else {
                    (large, small)
                };
            }
            p
        }
        "SAME_UPPER" | "SAME_LOWER" => {
            bail!("auto_pad {auto_pad} with output_shape is not supported")
        }
        other => bail!("auto_pad {other} is not supported"),
    };
    for a in 0..2 {
        out[a] = match output_shape {
            // ONNX's reference and tract keep the start padding and extend or crop at the end;
            // ONNX Runtime derives its own padding from output_shape. They agree when there is
            // no padding and output_shape is at least the unpadded output. The rows and
            // columns past the kernel's reach (the bias only) are an output_padding, and as
            // one must be fewer than the stride or dilation.
            Some(o) => {
                if pads != [0; 4] {
                    bail!("output_shape together with pads {pads:?} is not supported");
                }
                let reach = full[a] - out_pad[a];
                if o[a] < full[a] || o[a] - reach >= strides[a].max(dilations[a]) {
                    bail!(
                        "output_shape {o:?} must be from the unpadded output {full:?} to fewer \
                         than stride or dilation ({strides:?}, {dilations:?}) beyond the \
                         kernel's reach {:?} (as output_padding)",
                        [full[0] - out_pad[0], full[1] - out_pad[1]]
                    );
                }
                o[a]
            }
            None => full[a]
                .checked_sub(pads[a] + pads[a + 2])
                .filter(|&o| o >= 1)
                .ok_or_else(|| anyhow::anyhow!("pads {pads:?} leave no output"))?,
        };
    }
    let mut inputs = vec![x, wt];
    if !input(n, 2).is_empty() {
        let b = imp.tensor_in(input(n, 2))?;
        if imp.g.tensors[b]
            .konst
            .as_ref()
            .is_none_or(|k| k.data.len() != opg * group)
        {
            bail!(
                "bias {} must be a constant of {} values",
                input(n, 2),
                opg * group
            );
        }
        inputs.push(b);
    }
    imp.push(
        n,
        Op::ConvTranspose {
            strides,
            pads: [pads[0], pads[1]],
            dilations,
            group,
        },
        inputs,
        vec![1, opg * group, out[0], out[1]],
    )?;
    Ok(())
}
