//! The importer on malformed ONNX files, built in memory: every malformed node is an error
//! naming the node and the problem, never a panic.

use edgeslim_compiler::import::{
    catch_panic, coverage_markdown, find_op, import, panic_expected, supported_ops,
};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

mod common;
use common::*;

/// Import `m`, which must fail; the message.
fn err(m: &pb::ModelProto, name: &str) -> String {
    match import(&write(m, name)) {
        Ok(_) => panic!("{name}: imported"),
        Err(e) => format!("{e:#}"),
    }
}

/// Conv weights `[o, c, kh, kw]` of ones.
fn weights(dims: &[i64]) -> pb::TensorProto {
    let n: i64 = dims.iter().product();
    f32s("w", dims, &vec![1.0; n.max(0) as usize])
}

/// `x [1, 3, 8, 8] -> Conv (node "conv") -> y` with the weights and attributes given.
fn conv(w: &[i64], attrs: Vec<pb::AttributeProto>) -> pb::ModelProto {
    model(
        &[1, 3, 8, 8],
        vec![node("Conv", "conv", &["x", "w"], &["y"], attrs)],
        vec![weights(w)],
    )
}

/// A model of `x [1, 3, 8, 8]` through the nodes to `y`.
fn image(nodes: Vec<pb::NodeProto>, init: Vec<pb::TensorProto>) -> pb::ModelProto {
    model(&[1, 3, 8, 8], nodes, init)
}

/// A model of `x [1, 3, 8, 8] -> Conv (node "conv", 4 channels 3x3) -> h` and `node` reading
/// `h` and writing `y`.
fn after_conv(node: pb::NodeProto, mut init: Vec<pb::TensorProto>) -> pb::ModelProto {
    init.push(weights(&[4, 3, 3, 3]));
    image(
        vec![
            self::node("Conv", "conv", &["x", "w"], &["h"], vec![]),
            node,
        ],
        init,
    )
}

/// A `Constant` node `c` of tensor `t` (read by nothing) before `x -> Relu -> y`: the
/// Constant is imported first.
fn constant(t: pb::TensorProto) -> pb::ModelProto {
    let value = attribute("value", AttributeType::Tensor, |a| a.t = Some(t));
    image(
        vec![
            node("Constant", "c", &[], &["k"], vec![value]),
            node("Relu", "r", &["x"], &["y"], vec![]),
        ],
        vec![],
    )
}

/// `x [1, 3, 8, 8] -> QuantizeLinear (q) -> DequantizeLinear (dq) -> Relu -> y` with scale
/// `s` and zero point `z`.
fn qdq(s: pb::TensorProto) -> pb::ModelProto {
    image(
        vec![
            node("QuantizeLinear", "q", &["x", "s", "z"], &["xq"], vec![]),
            node("DequantizeLinear", "dq", &["xq", "s", "z"], &["xd"], vec![]),
            node("Relu", "r", &["xd"], &["y"], vec![]),
        ],
        vec![s, int8s("z", 3, &[], &[0])],
    )
}

/// `DequantizeLinear (dq)` of int8 weights `[4, 3, 3, 3]` with per-channel scales, then a
/// Conv.
fn dq_weights(zp: pb::TensorProto, attrs: Vec<pb::AttributeProto>) -> pb::ModelProto {
    image(
        vec![
            node("DequantizeLinear", "dq", &["wq", "ws", "z"], &["w"], attrs),
            node("Conv", "conv", &["x", "w"], &["y"], vec![]),
        ],
        vec![
            int8s("wq", 3, &[4, 3, 3, 3], &[1; 108]),
            f32s("ws", &[4], &[0.1; 4]),
            zp,
        ],
    )
}

/// `x [1, 3, 8, 8] -> Clip (clip) -> y` with bound inputs `lo`, `hi`.
fn clip(lo: pb::TensorProto, hi: pb::TensorProto) -> pb::ModelProto {
    image(
        vec![node("Clip", "clip", &["x", "lo", "hi"], &["y"], vec![])],
        vec![lo, hi],
    )
}

/// `x [1, 3, 8, 8] -> Reshape (reshape) -> y` to `spec`.
fn reshape(spec: &[i64]) -> pb::ModelProto {
    image(
        vec![node("Reshape", "reshape", &["x", "s"], &["y"], vec![])],
        vec![i64s("s", &[spec.len() as i64], spec)],
    )
}

/// `x [1, 3, 8, 8] -> op (pool) -> y` with the attributes given.
fn pool(op: &str, attrs: Vec<pb::AttributeProto>) -> pb::ModelProto {
    image(vec![node(op, "pool", &["x"], &["y"], attrs)], vec![])
}

/// A Gemm (fc) on input `shape` with weights `w`.
fn gemm(shape: &[i64], w: pb::TensorProto, attrs: Vec<pb::AttributeProto>) -> pb::ModelProto {
    model(
        shape,
        vec![node("Gemm", "fc", &["x", "w"], &["y"], attrs)],
        vec![w],
    )
}

/// A tensor with raw data.
fn raw(name: &str, data_type: i32, dims: &[i64], bytes: &[u8]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type,
        raw_data: bytes.to_vec(),
        ..Default::default()
    }
}

#[test]
fn the_well_formed_models_import() {
    for (name, m) in [
        ("conv", conv(&[4, 3, 3, 3], vec![])),
        (
            "pool",
            pool(
                "MaxPool",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
        ),
        ("reshape", reshape(&[1, -1])),
        ("qdq", qdq(f32s("s", &[], &[0.1]))),
        (
            "dq_weights",
            dq_weights(int8s("z", 3, &[4], &[0; 4]), vec![int("axis", 0)]),
        ),
        ("gemm", gemm(&[1, 4], f32s("w", &[4, 2], &[1.0; 8]), vec![])),
        (
            "clip",
            clip(f32s("lo", &[], &[0.0]), f32s("hi", &[], &[6.0])),
        ),
        ("constant", constant(f32s("t", &[2], &[1.0, 2.0]))),
    ] {
        if let Err(e) = import(&write(&m, &format!("ok_{name}"))) {
            panic!("{name}: {e:#}");
        }
    }
}

#[test]
fn malformed_nodes_are_errors_naming_the_node_and_the_problem() {
    let cases: Vec<(&str, pb::ModelProto, &str, &str)> = vec![
        (
            "zero strides",
            conv(&[4, 3, 3, 3], vec![ints("strides", &[0, 0])]),
            "node conv (Conv)",
            "strides must be two values >= 1 (2-D), got [0, 0]",
        ),
        (
            "zero dilation",
            conv(&[4, 3, 3, 3], vec![ints("dilations", &[1, 0])]),
            "node conv (Conv)",
            "dilations must be two values >= 1",
        ),
        (
            "3-D strides",
            conv(&[4, 3, 3, 3], vec![ints("strides", &[1, 1, 1])]),
            "node conv (Conv)",
            "strides must be two values >= 1 (2-D), got [1, 1, 1]",
        ),
        (
            "strides of the wrong attribute type",
            conv(&[4, 3, 3, 3], vec![int("strides", 2)]),
            "node conv (Conv)",
            "attribute strides must be of type INTS, got INT",
        ),
        (
            "pads of the wrong length",
            conv(&[4, 3, 3, 3], vec![ints("pads", &[1, 1])]),
            "node conv (Conv)",
            "pads must have four non-negative values, got [1, 1]",
        ),
        (
            "empty pads",
            conv(&[4, 3, 3, 3], vec![ints("pads", &[])]),
            "node conv (Conv)",
            "pads must have four non-negative values, got []",
        ),
        (
            "kernel larger than the input",
            conv(&[4, 3, 9, 9], vec![]),
            "node conv (Conv)",
            "window larger than the padded input (9 > 8)",
        ),
        (
            "empty kernel",
            conv(&[4, 3, 0, 3], vec![]),
            "node conv (Conv)",
            "weights [4, 3, 0, 3] have an empty dimension",
        ),
        (
            "3-D weights",
            conv(&[4, 3, 3], vec![]),
            "node conv (Conv)",
            "weights must be 4-D",
        ),
        (
            "negative group",
            conv(&[4, 3, 3, 3], vec![int("group", -2)]),
            "node conv (Conv)",
            "group must be >= 1, got -2",
        ),
        (
            "kernel_shape not the weights'",
            conv(&[4, 3, 3, 3], vec![ints("kernel_shape", &[5, 5])]),
            "node conv (Conv)",
            "kernel_shape [5, 5] does not match the weights",
        ),
        (
            "dilation overflowing the window arithmetic",
            conv(&[4, 3, 5, 5], vec![ints("dilations", &[1 << 62, 1])]),
            "node conv (Conv)",
            "window or padding too large",
        ),
        (
            "padding making a huge output",
            conv(&[4, 3, 3, 3], vec![ints("pads", &[1 << 40, 0, 0, 0])]),
            "node conv (Conv)",
            "is too large",
        ),
        (
            "pooling without kernel_shape",
            pool("MaxPool", vec![]),
            "node pool (MaxPool)",
            "attribute kernel_shape is missing",
        ),
        (
            "zero pooling kernel",
            pool("MaxPool", vec![ints("kernel_shape", &[0, 0])]),
            "node pool (MaxPool)",
            "kernel_shape must be two values >= 1",
        ),
        (
            "pooling window larger than the input",
            pool("AveragePool", vec![ints("kernel_shape", &[9, 9])]),
            "node pool (AveragePool)",
            "window larger than the padded input (9 > 8)",
        ),
        (
            "unknown auto_pad",
            pool(
                "AveragePool",
                vec![
                    ints("kernel_shape", &[2, 2]),
                    string("auto_pad", "SAME_MIDDLE"),
                ],
            ),
            "node pool (AveragePool)",
            "auto_pad SAME_MIDDLE is not supported",
        ),
        (
            "Concat without inputs",
            image(
                vec![
                    node("Concat", "cat", &[], &["c"], vec![int("axis", 1)]),
                    node("Relu", "r", &["x"], &["y"], vec![]),
                ],
                vec![],
            ),
            "node cat (Concat)",
            "expects at least 1 inputs, got 0",
        ),
        (
            "Relu without its input",
            image(vec![node("Relu", "r", &[], &["y"], vec![])], vec![]),
            "node r (Relu)",
            "expects 1 input, got 0",
        ),
        (
            "a node without an output",
            image(
                vec![
                    node("Relu", "r0", &["x"], &[], vec![]),
                    node("Relu", "r", &["x"], &["y"], vec![]),
                ],
                vec![],
            ),
            "node r0 (Relu)",
            "no (named) output",
        ),
        (
            "Reshape with two -1",
            reshape(&[1, -1, -1]),
            "node reshape (Reshape)",
            "has more than one -1",
        ),
        (
            "Reshape to an overflowing size",
            reshape(&[1, 1 << 40, 1 << 40]),
            "node reshape (Reshape)",
            "cannot reshape [1, 3, 8, 8] to [1, 1099511627776, 1099511627776]",
        ),
        (
            "Reshape copying a dimension the input lacks",
            reshape(&[0, 0, 0, 0, 0]),
            "node reshape (Reshape)",
            "0 at position 4 copies no dimension",
        ),
        (
            "raw_data not a multiple of the element size",
            constant(raw("t", 1, &[2], &[0; 7])),
            "node c (Constant)",
            "raw_data of 7 bytes is not a multiple of the 4-byte float32 element",
        ),
        (
            "negative value for uint8",
            constant(int8s("t", 2, &[1], &[-1])),
            "node c (Constant)",
            "value -1 is out of range for uint8",
        ),
        (
            "negative dimension",
            constant(f32s("t", &[-2], &[])),
            "node c (Constant)",
            "negative dimension -2",
        ),
        (
            "empty activation scale",
            qdq(f32s("s", &[0], &[])),
            "node q (QuantizeLinear)",
            "scale s is empty",
        ),
        (
            "empty weight zero point",
            dq_weights(int8s("z", 3, &[0], &[]), vec![int("axis", 0)]),
            "node dq (DequantizeLinear)",
            "zero point z: 0 values for axis of 4",
        ),
        (
            "per-axis dequantization on an axis out of range",
            dq_weights(int8s("z", 3, &[4], &[0; 4]), vec![int("axis", 7)]),
            "node dq (DequantizeLinear)",
            "axis 7 is out of range for a rank-4 constant",
        ),
        (
            "Clip bound an empty tensor",
            clip(f32s("lo", &[0], &[]), f32s("hi", &[], &[6.0])),
            "node clip (Clip)",
            "empty bound lo",
        ),
        (
            "Clip min above max",
            clip(f32s("lo", &[], &[6.0]), f32s("hi", &[], &[0.0])),
            "node clip (Clip)",
            "bounds must be ordered numbers, got min 6 and max 0",
        ),
        (
            "Gemm on a 4-D input",
            gemm(&[1, 3, 8, 8], f32s("w", &[4, 2], &[1.0; 8]), vec![]),
            "node fc (Gemm)",
            "expects a [1, K] input, got [1, 3, 8, 8]",
        ),
        (
            "Gemm with 3-D weights",
            gemm(&[1, 4], f32s("w", &[4, 2, 1], &[1.0; 8]), vec![]),
            "node fc (Gemm)",
            "weights must be 2-D, got [4, 2, 1]",
        ),
        (
            "Gemm alpha NaN",
            gemm(
                &[1, 4],
                f32s("w", &[4, 2], &[1.0; 8]),
                vec![float("alpha", f32::NAN)],
            ),
            "node fc (Gemm)",
            "attribute alpha must be finite",
        ),
        (
            "BatchNormalization parameters of the wrong length",
            after_conv(
                node(
                    "BatchNormalization",
                    "bn",
                    &["h", "g", "b", "m", "v"],
                    &["y"],
                    vec![],
                ),
                vec![
                    f32s("g", &[3], &[1.0; 3]),
                    f32s("b", &[4], &[0.0; 4]),
                    f32s("m", &[4], &[0.0; 4]),
                    f32s("v", &[4], &[1.0; 4]),
                ],
            ),
            "node bn (BatchNormalization)",
            "parameter g has 3 values for 4 channels",
        ),
        (
            "a constant Add operand that is no bias",
            after_conv(
                node("Add", "add", &["h", "c"], &["y"], vec![]),
                vec![f32s("c", &[3], &[1.0; 3])],
            ),
            "node add (Add)",
            "constant c of shape [3] is not a bias of 1 or 4 values",
        ),
        (
            "a ConvTranspose output_shape beyond an output_padding",
            after_conv(
                node(
                    "ConvTranspose",
                    "convt",
                    &["h", "wt"],
                    &["y"],
                    vec![ints("strides", &[2, 2]), ints("output_shape", &[15, 13])],
                ),
                vec![f32s("wt", &[4, 2, 3, 3], &[1.0; 72])],
            ),
            "node convt (ConvTranspose)",
            "output_shape [15, 13] must be from the unpadded output [13, 13]",
        ),
        (
            "a ConvTranspose output_shape with pads",
            after_conv(
                node(
                    "ConvTranspose",
                    "convt",
                    &["h", "wt"],
                    &["y"],
                    vec![ints("pads", &[1, 1, 1, 1]), ints("output_shape", &[13, 13])],
                ),
                vec![f32s("wt", &[4, 2, 3, 3], &[1.0; 72])],
            ),
            "node convt (ConvTranspose)",
            "output_shape together with pads [1, 1, 1, 1] is not supported",
        ),
        (
            "a SAME ConvTranspose whose kernel is shorter than its stride",
            after_conv(
                node(
                    "ConvTranspose",
                    "convt",
                    &["h", "wt"],
                    &["y"],
                    vec![ints("strides", &[4, 4]), string("auto_pad", "SAME_UPPER")],
                ),
                vec![f32s("wt", &[4, 2, 3, 3], &[1.0; 72])],
            ),
            "node convt (ConvTranspose)",
            "auto_pad SAME_UPPER: the kernel reaches 23 positions, fewer than the 24",
        ),
        (
            "a Resize whose aspect ratio policy scales the channels",
            after_conv(
                node(
                    "Resize",
                    "resize",
                    &["h", "", "", "sz"],
                    &["y"],
                    vec![string("keep_aspect_ratio_policy", "not_smaller")],
                ),
                vec![i64s("sz", &[4], &[1, 4, 16, 16])],
            ),
            "node resize (Resize)",
            "only height and width may be resized",
        ),
        (
            "Pad axes and pads of different lengths",
            after_conv(
                node("Pad", "pad", &["h", "p", "", "ax"], &["y"], vec![]),
                vec![i64s("p", &[2], &[0, 1]), i64s("ax", &[2], &[2, 3])],
            ),
            "node pad (Pad)",
            "pads [0, 1] must have two values per axis of axes [2, 3]",
        ),
    ];
    assert!(cases.len() >= 12);
    for (i, (what, m, node, problem)) in cases.iter().enumerate() {
        let e = err(m, &format!("case{i}"));
        assert!(
            e.contains(node) && e.contains(problem),
            "{what}: expected \"{node}\" and \"{problem}\" in: {e}"
        );
        assert!(!e.contains("panicked"), "{what}: {e}");
    }
}

/// A Conv whose `SAME_UPPER` padding tract computes from a `value_info` giving the input an
/// empty dimension: tract's padding arithmetic overflows (a panic in builds with overflow
/// checks), while the importer, reading the graph input, accepts the node.
fn tract_panics() -> pb::ModelProto {
    let mut m = conv(
        &[4, 3, 3, 3],
        vec![string("auto_pad", "SAME_UPPER"), ints("strides", &[4, 4])],
    );
    if let Some(g) = m.graph.as_mut() {
        g.value_info.push(value("x", &[1, 3, 0, 8]));
    }
    m
}

#[test]
fn a_tract_panic_is_an_error() {
    let e = err(&tract_panics(), "tract_panics");
    assert!(e.contains("tract_panics.onnx"), "{e}");
    if cfg!(debug_assertions) {
        assert!(e.contains("tract failed (panicked: "), "{e}");
    }
}

#[test]
fn caught_panics_are_expected_while_they_unwind() {
    assert!(!panic_expected());
    let r = catch_panic(|| {
        assert!(panic_expected());
        let r: Result<(), String> = catch_panic(|| panic!("inner"));
        assert_eq!(r, Err("inner".to_string()));
        assert!(panic_expected(), "still inside the outer catch");
        panic!("outer {}", 1)
    });
    assert_eq!(r, Err("outer 1".to_string()));
    assert!(!panic_expected());
    assert_eq!(catch_panic(|| 7), Ok(7));
}

#[test]
fn the_registry_lists_each_op_once_and_documents_it() {
    let ops = supported_ops();
    let md = coverage_markdown();
    for (k, op) in ops.iter().enumerate() {
        assert!(!ops[..k].contains(op), "{op} twice");
        let entry = find_op(op).unwrap_or_else(|| panic!("{op} not found"));
        assert!(!entry.formats.is_empty() && !entry.note.is_empty(), "{op}");
        assert!(md.contains(&format!("\n| {op} |")), "{op} not in the table");
    }
    assert_eq!(ops.first(), Some(&"Conv"));
}

#[test]
fn unsupported_ops_name_the_node_and_list_the_registry() {
    // Control flow: not an op the runtime's one-pass graph can take.
    let m = image(vec![node("Loop", "loop", &["x"], &["y"], vec![])], vec![]);
    let e = err(&m, "loop");
    assert!(
        e.starts_with("node loop (Loop): unsupported op type; supported: Conv, "),
        "{e}"
    );
    assert!(e.ends_with(&supported_ops().join(", ")), "{e}");
}

/// Found by the `compile` fuzz target (`tools/compiler/fuzz/`): `tiny_float.onnx` with a
/// classifier weight mutated to about 2.6e38. Its logits overflow float32 in calibration, and
/// the compiler wrote a blob with an infinite output scale, which the runtime then refused. It
/// must refuse the model itself, naming the tensor (and never write a blob the runtime refuses).
#[test]
fn overflowing_weights_are_refused_naming_the_tensor() {
    use edgeslim_compiler::passes::{self, quantize};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz_overflowing_weights.onnx");
    let l = edgeslim_compiler::lower(&path).expect("the file imports");
    let [h, w, c] = l.tensors[l.input].shape;
    let n = h * w * c;
    // The fuzz target's two calibration samples: zeros and a ramp.
    let ramp = (0..n).map(|i| (i % 17) as f32 / 8.0 - 1.0).collect();
    let ranges = quantize::calibrate(&l, &[vec![0.0; n], ramp], false);
    let mut warnings = Vec::new();
    match quantize::run(&l, Some(&ranges), &mut warnings) {
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains("overflow") && msg.contains("logits"),
                "the error names neither the overflow nor the tensor: {msg}"
            );
        }
        Ok(def) => {
            let blob = def
                .to_bytes(&passes::plan::run(&def))
                .expect("the blob is written");
            if let Err(e) = edgeslim_runtime::Model::parse(&blob) {
                panic!("the compiler wrote a blob the runtime refuses: {e}");
            }
        }
    }
}
