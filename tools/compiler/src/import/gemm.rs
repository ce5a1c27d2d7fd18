//! Fully connected layers: `Gemm`, `MatMul` (float or QDQ) and `QLinearMatMul` (QOperator),
//! all on a `[1, K]` input with constant weights.

use super::registry::{Format, OpImporter, attr};
use super::tensor::Data;
use super::{Importer, attrs, input};
use crate::ir::{Const, ConstQuant, Op};
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The fully connected ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Gemm",
        inputs: (2, 3),
        attributes: &[
            attr("transA", "0 only"),
            attr("transB", "0 or 1"),
            attr("alpha", "finite; default 1"),
            attr("beta", "finite; default 1"),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "input [1, K], constant 2-D weights, optional constant bias of 1 or O values",
        import: fully_connected,
    },
    OpImporter {
        op_type: "MatMul",
        inputs: (2, 2),
        attributes: &[],
        formats: &[Format::Float, Format::Qdq],
        note: "input [1, K] times constant 2-D weights [K, O]",
        import: fully_connected,
    },
    OpImporter {
        op_type: "QLinearMatMul",
        inputs: (8, 8),
        attributes: &[],
        formats: &[Format::QOperator],
        note: "as MatMul; per-tensor input and output scales, int8 or uint8 weights per tensor \
               or per output column",
        import: fully_connected,
    },
];

/// Any of the three, told apart by `n.op_type`.
fn fully_connected(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let inp = |k| input(n, k);
    let x = imp.activation(inp(0), "input")?;
    let k = match imp.shape(x).as_slice() {
        [1, k] => *k,
        s => bail!("expects a [1, K] input, got {s:?}"),
    };
    let (w_name, trans_b) = match n.op_type.as_str() {
        "Gemm" => {
            if attrs::int(n, "transA", 0)? != 0 {
                bail!("transA = 1 is not supported");
            }
            (inp(1), attrs::flag(n, "transB")?)
        }
        "MatMul" => (inp(1), false),
        _ => (inp(3), false),
    };
    if !imp.is_const(w_name) {
        bail!("weight {w_name} is not a constant (only constant weights are supported)");
    }
    // Normalise to W [O, K] (rows are outputs).
    let (wd, wv, wq) = if n.op_type == "QLinearMatMul" {
        let xq = imp.qparams(inp(1), Some(inp(2)))?;
        imp.annotate(x, xq);
        let t = imp.dequant_const(&format!("{}/W", n.name), inp(3), inp(4), Some(inp(5)), 1)?;
        let c = imp.g.tensors[t].konst.clone().unwrap_or(Const {
            data: vec![],
            quant: None,
        });
        let (_, raw) = imp.raw(inp(3))?;
        let s = imp.raw(inp(4))?.1.to_f32();
        let zq = match imp.raw(inp(5)) {
            Ok((_, Data::I8(z))) => z.iter().all(|&z| z == 0),
            _ => false,
        };
        let q = match raw {
            Data::I8(v) if zq => Some((v, s)),
            _ => None,
        };
        (imp.shape(t), c.data, q)
    } else {
        let t = imp.tensor_in(w_name)?;
        let c = imp.g.tensors[t].konst.clone().unwrap_or(Const {
            data: vec![],
            quant: None,
        });
        let q = c
            .quant
            .as_ref()
            .map(|q| (q.values.clone(), q.scales.clone()));
        (imp.shape(t), c.data, q)
    };
    let (rows, cols) = match wd.as_slice() {
        [a, b] => (*a, *b),
        s => bail!("weights must be 2-D, got {s:?}"),
    };
    let (o, kk) = if trans_b { (rows, cols) } else { (cols, rows) };
    if kk != k {
        bail!("weights {wd:?} do not match {k} input features");
    }
    if o == 0 {
        bail!("weights {wd:?} have no outputs");
    }
    if wv.len() != rows * cols || wq.as_ref().is_some_and(|(v, _)| v.len() != rows * cols) {
        bail!("weights {wd:?}: {} values", wv.len());
    }
    let mut w = vec![0f32; o * k];
    let mut wq8 = wq.as_ref().map(|_| vec![0i8; o * k]);
    for r in 0..rows {
        for c2 in 0..cols {
            let (oo, ii) = if trans_b { (r, c2) } else { (c2, r) };
            w[oo * k + ii] = wv[r * cols + c2];
            if let (Some(d), Some((v, _))) = (wq8.as_mut(), wq.as_ref()) {
                d[oo * k + ii] = v[r * cols + c2];
            }
        }
    }
    let alpha = attrs::finite(n, "alpha", 1.0)?;
    let beta = attrs::finite(n, "beta", 1.0)?;
    let quant = match (wq8, wq) {
        (Some(values), Some((_, s))) if alpha == 1.0 => {
            // Per-tensor, or per output (ONNX axis of W [K, O] is 1; of W^T [O, K] 0).
            let scales = if s.len() == 1 { vec![s[0]; o] } else { s };
            (scales.len() == o).then_some(ConstQuant { values, scales })
        }
        _ => None,
    };
    if alpha != 1.0 {
        w.iter_mut().for_each(|v| *v *= alpha);
    }
    let wt = imp.add_tensor(
        &format!("{}/W", n.name),
        vec![o, k],
        Some(Const { data: w, quant }),
    );
    let mut inputs = vec![x, wt];
    let bias_name = if n.op_type == "Gemm" { inp(2) } else { "" };
    if !bias_name.is_empty() {
        let (bd, bv) = imp.raw(bias_name)?;
        let bv = bv.to_f32();
        let data: Vec<f32> = if bv.len() == 1 {
            vec![bv[0] * beta; o]
        } else if bv.len() == o {
            bv.iter().map(|v| v * beta).collect()
        } else {
            bail!("bias {bias_name} of shape {bd:?} does not broadcast to [1, {o}]");
        };
        let b = imp.add_tensor(bias_name, vec![o], Some(Const { data, quant: None }));
        inputs.push(b);
    }
    let y = imp.push(n, Op::Gemm, inputs, vec![1, o])?;
    if n.op_type == "QLinearMatMul" {
        let yq = imp.qparams(inp(6), Some(inp(7)))?;
        imp.annotate(y, yq);
    }
    Ok(())
}
