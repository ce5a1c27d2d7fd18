//! `Add`: of two activations of one shape, or of an activation and a constant bias (folded
//! into the producing Conv/Gemm by `bn_fold`).

use super::registry::{Format, OpImporter};
use super::{Importer, input, output};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The add op.
pub(crate) const OPS: &[OpImporter] = &[OpImporter {
    op_type: "Add",
    inputs: (2, 2),
    attributes: &[],
    formats: &[Format::Float, Format::Qdq],
    note: "two computed tensors of the same shape (no broadcasting), or a computed tensor and \
           a constant of 1 or C values (a bias after a Conv/Gemm/MatMul)",
    import: add,
}];

/// `Add`.
fn add(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let inp = |k| input(n, k);
    let (ca, cb) = (imp.is_const(inp(0)), imp.is_const(inp(1)));
    if ca || cb {
        // A constant operand: a bias, folded into the producer by `bn_fold`.
        let (x, c) = if ca {
            (inp(1), inp(0))
        } else {
            (inp(0), inp(1))
        };
        let x = imp.tensor_in(x)?;
        let c = imp.tensor_in(c)?;
        let (sx, sc) = (imp.shape(x), imp.shape(c));
        let values = sc.iter().product::<usize>();
        if ca && cb {
            if sx.iter().product::<usize>() != values {
                bail!("broadcasting is not supported ({sx:?} + {sc:?})");
            }
        } else {
            let channels = sx.get(1).copied().unwrap_or(1);
            if values != 1 && values != channels {
                bail!(
                    "constant {} of shape {sc:?} is not a bias of 1 or {channels} values for {sx:?}",
                    imp.g.tensors[c].name
                );
            }
        }
        imp.push(n, Op::Add, vec![x, c], sx)?;
        return Ok(());
    }
    let a = imp.activation(inp(0), "input")?;
    let b = imp.activation(inp(1), "input")?;
    if imp.shape(a) != imp.shape(b) {
        bail!(
            "broadcasting is not supported ({:?} + {:?})",
            imp.shape(a),
            imp.shape(b)
        );
    }
    let s = imp.shape(a);
    let node = imp.g.nodes.len();
    for (pos, name) in [inp(0), inp(1)].into_iter().enumerate() {
        if imp.add_outputs.contains(name) {
            imp.float_add_reads.push((node, pos));
        }
    }
    imp.push(n, Op::Add, vec![a, b], s)?;
    imp.add_outputs.insert(output(n));
    Ok(())
}
