//! `BatchNormalization` (inference), folded into the preceding Conv or Gemm by `bn_fold`.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The normalisation op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "BatchNormalization",
    inputs: (5, 5),
    attributes: &[
        attr("epsilon", "finite, >= 0; default 1e-5"),
        attr("training_mode", "0 only"),
    ],
    formats: &[Format::Float, Format::Qdq],
    note: "constant scale, bias, mean and variance of C values; right after a Conv or Gemm \
           whose output it alone reads",
    import: batch_norm,
}];

/// `BatchNormalization`.
fn batch_norm(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let inp = |k| input(n, k);
    let x = imp.activation(inp(0), "input")?;
    let s = imp.shape(x);
    let Some(&c) = s.get(1) else {
        bail!("expects an input with channels, got {s:?}");
    };
    let ins: Vec<usize> = (1..5)
        .map(|k| {
            if !imp.is_const(inp(k)) {
                bail!("parameter {} is not a constant", inp(k));
            }
            let t = imp.tensor_in(inp(k))?;
            let len = imp.g.tensors[t].konst.as_ref().map_or(0, |c| c.data.len());
            if len != c {
                bail!("parameter {} has {len} values for {c} channels", inp(k));
            }
            Ok(t)
        })
        .collect::<Result<_>>()?;
    let eps = attrs::finite(n, "epsilon", 1e-5)?;
    if eps < 0.0 {
        bail!("epsilon must be >= 0, got {eps}");
    }
    if attrs::int(n, "training_mode", 0)? != 0 {
        bail!("training_mode = 1 is not supported");
    }
    let mut inputs = vec![x];
    inputs.extend(ins);
    imp.push(n, Op::BatchNorm { eps }, inputs, s)?;
    Ok(())
}
