//! `edgeslim ops` against `docs/operators.md`, and the importer's errors through the binary: a
//! panic inside tract, caught by the importer, is the importer's one-line error, not the panic
//! hook's "internal error".

use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run the binary in the workspace root.
fn edgeslim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the edgeslim binary runs")
}

#[test]
fn docs_operators_md_is_the_output_of_edgeslim_ops() {
    let out = edgeslim(&["ops", "--markdown"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("UTF-8 output");
    let docs = std::fs::read_to_string(root().join("docs/operators.md")).unwrap_or_default();
    assert!(
        docs == generated,
        "docs/operators.md differs from the importer's registry; regenerate it with \
         `cargo run -p edgeslim -- ops --markdown > docs/operators.md`"
    );
}

#[test]
fn edgeslim_ops_lists_every_supported_op() {
    let out = edgeslim(&["ops"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    for op in edgeslim_compiler::import::supported_ops() {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{op} ["))),
            "{op} missing from:\n{text}"
        );
    }
}

/// A float32 value of static `shape`.
fn value(name: &str, shape: &[i64]) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: 1,
                shape: Some(pb::TensorShapeProto {
                    dim: shape
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `x [1, 3, 8, 8] -> Conv (SAME_UPPER, stride 4) -> y`, with a `value_info` giving `x` an
/// empty dimension: tract computes the padding from it and its arithmetic overflows (a panic
/// in builds with overflow checks, as the tests'); the importer, reading the graph input,
/// accepts the node, so the panic happens inside its call of tract.
fn tract_panics() -> pb::ModelProto {
    let attr = |name: &str, ty: AttributeType, f: &dyn Fn(&mut pb::AttributeProto)| {
        let mut a = pb::AttributeProto {
            name: name.into(),
            r#type: ty as i32,
            ..Default::default()
        };
        f(&mut a);
        a
    };
    let conv = pb::NodeProto {
        op_type: "Conv".into(),
        name: "conv".into(),
        input: vec!["x".into(), "w".into()],
        output: vec!["y".into()],
        attribute: vec![
            attr("auto_pad", AttributeType::String, &|a| {
                a.s = b"SAME_UPPER".to_vec()
            }),
            attr("strides", AttributeType::Ints, &|a| a.ints = vec![4, 4]),
        ],
        ..Default::default()
    };
    let w = pb::TensorProto {
        name: "w".into(),
        dims: vec![4, 3, 3, 3],
        data_type: 1,
        float_data: vec![0.5; 108],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: vec![conv],
            initializer: vec![w],
            input: vec![value("x", &[1, 3, 8, 8])],
            output: vec![value("y", &[1, 4, 2, 2])],
            value_info: vec![value("x", &[1, 3, 0, 8])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn a_panic_inside_tract_is_the_importers_error_not_an_internal_error() {
    let dir = std::env::temp_dir().join(format!("edgeslim-cli-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("tract_panics.onnx");
    std::fs::write(&model, tract_panics().encode_to_vec()).expect("model written");
    let out = edgeslim(&[
        "compile",
        model.to_str().expect("UTF-8 temp path"),
        "-o",
        dir.join("out.esm").to_str().expect("UTF-8 temp path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "a clean error: {err}");
    assert!(!err.contains("internal error"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("tract_panics.onnx"), "{err}");
    if cfg!(debug_assertions) {
        assert!(err.starts_with("error: tract failed (panicked: "), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
