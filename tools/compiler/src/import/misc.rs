//! Graph plumbing: `Identity`, `Dropout` (inference: identity) and `Constant`.

use super::registry::{Format, OpImporter, attr};
use super::tensor::read_tensor;
use super::{Importer, attrs, input, output};
use anyhow::{Result, anyhow};
use tract_onnx::pb;

/// All formats: these ops only forward or define values.
const ALL: &[Format] = &[Format::Float, Format::Qdq, Format::QOperator];

/// The plumbing ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Identity",
        inputs: (1, 1),
        attributes: &[],
        formats: ALL,
        note: "the output names the input",
        import: forward,
    },
    OpImporter {
        op_type: "Dropout",
        inputs: (1, 3),
        attributes: &[],
        formats: ALL,
        note: "inference: the identity (ratio and training_mode ignored, no mask output)",
        import: forward,
    },
    OpImporter {
        op_type: "Constant",
        inputs: (0, 0),
        attributes: &[attr(
            "value",
            "a float32, int8, uint8, int32 or int64 tensor (the other value_* forms are not supported)",
        )],
        formats: ALL,
        note: "a constant for the inputs of other nodes",
        import: constant,
    },
];

/// `Identity` and `Dropout`: the output stands for the input.
fn forward(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let v = imp.value(input(n, 0))?.clone();
    imp.values.insert(output(n), v);
    Ok(())
}

/// `Constant`.
fn constant(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let t = attrs::tensor(n, "value")?
        .ok_or_else(|| anyhow!("only the `value` attribute is supported"))?;
    let (d, v) = read_tensor(t)?;
    imp.values.insert(output(n), super::Value::Raw(d, v));
    Ok(())
}
