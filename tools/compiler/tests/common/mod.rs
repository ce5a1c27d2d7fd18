//! In-memory ONNX models for the compiler's tests (tract-onnx's protobuf types, encoded with
//! prost): attributes, tensors, nodes, value infos and whole models written to a temp file.
// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use prost::Message;
use std::path::PathBuf;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};

/// An attribute of type `ty`, filled by `f`.
pub fn attribute(
    name: &str,
    ty: AttributeType,
    f: impl FnOnce(&mut pb::AttributeProto),
) -> pb::AttributeProto {
    let mut a = pb::AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    };
    f(&mut a);
    a
}

/// Integer-list attribute.
pub fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    attribute(name, AttributeType::Ints, |a| a.ints = v.to_vec())
}

/// Integer attribute.
pub fn int(name: &str, v: i64) -> pb::AttributeProto {
    attribute(name, AttributeType::Int, |a| a.i = v)
}

/// Float attribute.
pub fn float(name: &str, v: f32) -> pb::AttributeProto {
    attribute(name, AttributeType::Float, |a| a.f = v)
}

/// String attribute.
pub fn string(name: &str, v: &str) -> pb::AttributeProto {
    attribute(name, AttributeType::String, |a| a.s = v.as_bytes().to_vec())
}

/// float32 tensor.
pub fn f32s(name: &str, dims: &[i64], data: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

/// int64 tensor.
pub fn i64s(name: &str, dims: &[i64], data: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// 8-bit tensor (`data_type` 2 uint8, 3 int8) from `int32_data`.
pub fn int8s(name: &str, data_type: i32, dims: &[i64], data: &[i32]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type,
        int32_data: data.to_vec(),
        ..Default::default()
    }
}

/// A node named `name`.
pub fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// A float32 value of static `shape` (no shape when empty).
pub fn value(name: &str, shape: &[i64]) -> pb::ValueInfoProto {
    let shape = (!shape.is_empty()).then(|| pb::TensorShapeProto {
        dim: shape
            .iter()
            .map(|&d| Dimension {
                value: Some(dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model (opset 13) of input `x` of `shape`, the nodes and initializers, and output `y`.
pub fn model(
    shape: &[i64],
    nodes: Vec<pb::NodeProto>,
    init: Vec<pb::TensorProto>,
) -> pb::ModelProto {
    model_opset(13, shape, nodes, init)
}

/// [`model`] at operator set `opset`.
pub fn model_opset(
    opset: i64,
    shape: &[i64],
    nodes: Vec<pb::NodeProto>,
    init: Vec<pb::TensorProto>,
) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: init,
            input: vec![value("x", shape)],
            output: vec![value("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Write `m` to a file of this test process's temp directory.
pub fn write(m: &pb::ModelProto, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeslim-onnx-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, m.encode_to_vec()).unwrap_or_else(|e| panic!("{e}"));
    path
}
