//! Shape ops: `Flatten` and `Reshape` (a reshape of the data in NCHW order; the batch stays 1).

use super::registry::{Format, OpImporter, attr};
use super::tensor::{Data, element_count};
use super::{Importer, attrs, input};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The shape ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Flatten",
        inputs: (1, 1),
        attributes: &[attr("axis", "1 only")],
        formats: &[Format::Float, Format::Qdq],
        note: "to [1, C*H*W]",
        import: flatten,
    },
    OpImporter {
        op_type: "Reshape",
        inputs: (2, 2),
        attributes: &[attr("allowzero", "0, or 1 without a 0 in the shape")],
        formats: &[Format::Float, Format::Qdq],
        note: "constant int64 shape: values > 0, 0 (copy a dimension of the input) and at most \
               one -1; the batch dimension stays 1",
        import: reshape,
    },
];

/// `Flatten`.
fn flatten(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.tensor_in(input(n, 0))?;
    let s = imp.shape(x);
    let total = element_count(&s)?;
    let axis = attrs::int(n, "axis", 1)?;
    if axis != 1 {
        bail!("only axis = 1 is supported");
    }
    if s.first() != Some(&1) {
        bail!("the batch dimension must be 1, got input {s:?}");
    }
    imp.push(n, Op::Reshape, vec![x], vec![1, total])?;
    Ok(())
}

/// `Reshape`.
fn reshape(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.tensor_in(input(n, 0))?;
    let s = imp.shape(x);
    let total = element_count(&s)?;
    let (_, sv) = imp.raw(input(n, 1))?;
    let spec: Vec<i64> = match sv {
        Data::I64(v) => v,
        Data::I32(v) => v.into_iter().map(i64::from).collect(),
        _ => bail!("the shape {} must be int64", input(n, 1)),
    };
    if attrs::flag(n, "allowzero")? && spec.contains(&0) {
        bail!("allowzero = 1 with a 0 in the shape {spec:?} is not supported");
    }
    let mut out: Vec<usize> = Vec::new();
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 => match s.get(i) {
                Some(&v) => out.push(v),
                None => bail!("shape {spec:?}: 0 at position {i} copies no dimension of {s:?}"),
            },
            -1 => {
                if infer.is_some() {
                    bail!("shape {spec:?} has more than one -1");
                }
                infer = Some(i);
                out.push(1);
            }
            d if d > 0 => match usize::try_from(d) {
                Ok(d) => out.push(d),
                Err(_) => bail!("bad shape value {d}"),
            },
            _ => bail!("bad shape value {d}"),
        }
    }
    let Ok(rest) = element_count(&out) else {
        bail!("cannot reshape {s:?} to {spec:?}");
    };
    if let Some(i) = infer {
        if rest == 0 || !total.is_multiple_of(rest) {
            bail!("cannot reshape {s:?} to {spec:?}");
        }
        out[i] = total / rest;
    }
    if element_count(&out).ok() != Some(total) {
        bail!("cannot reshape {s:?} to {spec:?}");
    }
    if out.first() != Some(&1) {
        bail!("the batch dimension must stay 1, got {out:?}");
    }
    imp.push(n, Op::Reshape, vec![x], out)?;
    Ok(())
}
