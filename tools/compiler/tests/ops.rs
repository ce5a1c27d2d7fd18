//! Each supported op the conformance networks do not exercise (or not in every mode), in a
//! small float model compiled with calibration and run by the runtime, against tract's float
//! result on the same inputs: the difference is quantization error only, bounded in steps of
//! the output's scale.

use edgeslim_compiler::{Array, CompileOptions, compile, run_batch};
use edgeslim_runtime::{Model, TaskMask, WidthConfig};
use tract_onnx::pb;
use tract_onnx::prelude::*;

mod common;
use common::*;

/// Deterministic inputs `[n, 4, 6, 6]` in about [-2, 2], on a 1/64 grid.
fn inputs(n: usize, seed: u64) -> Array<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data = (0..n * 4 * 6 * 6)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) % 257) as f32 / 64.0 - 2.0
        })
        .collect();
    Array {
        shape: vec![n, 4, 6, 6],
        data,
    }
}

/// `x [1, 4, 6, 6] -> Conv 3x3 (4 -> 4, pad 1) -> a` and `x -> Conv 1x1 -> b`, then `nodes`
/// (reading `a`, `b`) to `y`, at `opset`.
fn net(opset: i64, nodes: Vec<pb::NodeProto>, mut init: Vec<pb::TensorProto>) -> pb::ModelProto {
    let w3: Vec<f32> = (0..4 * 4 * 9)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 20.0)
        .collect();
    let w1: Vec<f32> = (0..16).map(|i| ((i * 5 % 9) as f32 - 4.0) / 6.0).collect();
    init.push(f32s("w3", &[4, 4, 3, 3], &w3));
    init.push(f32s("w1", &[4, 4, 1, 1], &w1));
    let mut all = vec![
        node(
            "Conv",
            "conv_a",
            &["x", "w3"],
            &["a"],
            vec![ints("pads", &[1, 1, 1, 1])],
        ),
        node("Conv", "conv_b", &["x", "w1"], &["b"], vec![]),
    ];
    all.extend(nodes);
    model_opset(opset, &[1, 4, 6, 6], all, init)
}

/// Compile `m` calibrated on the test inputs themselves (so no value leaves its calibrated
/// range: what is measured is the op, not the calibration's coverage), run runtime and tract;
/// the largest and mean difference in output steps.
fn steps(
    m: &pb::ModelProto,
    reference: &pb::ModelProto,
    post: &dyn Fn(&mut [f32]),
    name: &str,
) -> (f32, f32) {
    let path = write(m, name);
    let ref_path = write(reference, &format!("{name} (reference)"));
    let calib = inputs(8, 2);
    let cpath = path.with_extension("calib.npy");
    edgeslim_compiler::npy::write_f32(&cpath, &calib).unwrap_or_else(|e| panic!("{e}"));
    let opts = CompileOptions {
        calib: Some(cpath),
        ..CompileOptions::default()
    };
    let c = compile(&path, &opts).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let model = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    let x = inputs(8, 2);
    let outs = run_batch(
        &c.blob,
        &x,
        &WidthConfig::full(&model),
        TaskMask::all(&model),
    )
    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let o = &outs[0];
    let plan = tract_onnx::onnx()
        .model_for_path(&ref_path)
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("{name}: tract: {e:?}"));
    let per = x.data.len() / 8;
    let mut t = Vec::new();
    for i in 0..8 {
        let xi = Tensor::from_shape(&[1, 4, 6, 6], &x.data[i * per..(i + 1) * per])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let r = plan
            .run(tvec!(xi.into()))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let y = r[0].cast_to::<f32>().unwrap_or_else(|e| panic!("{e:?}"));
        let view = y
            .to_plain_array_view::<f32>()
            .unwrap_or_else(|e| panic!("{e:?}"));
        t.extend(view.iter().copied());
    }
    post(&mut t);
    assert_eq!(t.len(), o.float.data.len(), "{name}: output sizes");
    let step = o.quant.0;
    let d: Vec<f32> = t
        .iter()
        .zip(&o.float.data)
        .map(|(a, b)| (a - b).abs() / step)
        .collect();
    let max = d.iter().copied().fold(0.0, f32::max);
    let mean = d.iter().sum::<f32>() / d.len() as f32;
    eprintln!("{name}: max {max:.2} steps, mean {mean:.3} steps");
    (max, mean)
}

/// Two requantizations before the output (the convolutions', the op's), and ops whose output
/// range is narrower than their input's (a mean, a saturating function) see an input step as
/// more than one output step: a few steps at most, under one on average.
fn check(m: pb::ModelProto, name: &str) {
    check_against(&m, &m, &|_| {}, name);
}

/// [`check`] with tract running `reference`, a model equal to `m` in exact arithmetic.
fn check_against(
    m: &pb::ModelProto,
    reference: &pb::ModelProto,
    post: &dyn Fn(&mut [f32]),
    name: &str,
) {
    let (max, mean) = steps(m, reference, post, name);
    assert!(
        max <= 4.0 && mean <= 1.0,
        "{name}: max {max} steps, mean {mean}"
    );
}

#[test]
fn binary_ops_of_computed_tensors() {
    check(
        net(
            13,
            vec![node("Sub", "sub", &["a", "b"], &["y"], vec![])],
            vec![],
        ),
        "sub",
    );
    check(
        net(
            13,
            vec![node("Mean", "mean", &["a", "b"], &["y"], vec![])],
            vec![],
        ),
        "mean",
    );
    check(
        net(
            13,
            vec![node("Mul", "mul", &["a", "b"], &["y"], vec![])],
            vec![],
        ),
        "mul",
    );
    for op in ["Max", "Min"] {
        check(
            net(13, vec![node(op, op, &["a", "b"], &["y"], vec![])], vec![]),
            op,
        );
    }
}

#[test]
fn arithmetic_with_constants() {
    let per_channel = f32s("k", &[4, 1, 1], &[0.5, -1.5, 2.0, 0.25]);
    for (op, k) in [("Mul", 1), ("Div", 1), ("Sub", 1), ("Sub", 0), ("Add", 1)] {
        let ins = if k == 1 { ["a", "k"] } else { ["k", "a"] };
        let m = net(
            13,
            vec![node(op, op, &ins, &["y"], vec![])],
            vec![per_channel.clone()],
        );
        let name = format!("{op} per-channel constant (position {k})");
        if (op, k) == ("Sub", 0) {
            // tract 0.23.9 computes this `Sub(k, a)`, with `k` broadcast per channel, as
            // `k + a` (ONNX Runtime gives `k - a`, as edgeslim does): the reference is tract's
            // `a`, subtracted from `k` here.
            let a = net(
                13,
                vec![node("Identity", "id", &["a"], &["y"], vec![])],
                vec![],
            );
            let k_minus = |t: &mut [f32]| {
                for (i, v) in t.iter_mut().enumerate() {
                    *v = [0.5f32, -1.5, 2.0, 0.25][(i / 36) % 4] - *v;
                }
            };
            check_against(&m, &a, &k_minus, &name);
        } else {
            check(m, &name);
        }
        let scalar = f32s("k", &[], &[1.75]);
        check(
            net(13, vec![node(op, op, &ins, &["y"], vec![])], vec![scalar]),
            &format!("{op} scalar constant (position {k})"),
        );
    }
}

#[test]
fn table_ops() {
    for (op, attrs) in [
        ("Sigmoid", vec![]),
        ("Tanh", vec![]),
        ("HardSigmoid", vec![float("alpha", 0.3), float("beta", 0.4)]),
        ("HardSwish", vec![]),
        ("LeakyRelu", vec![float("alpha", 0.2)]),
        ("Elu", vec![float("alpha", 0.8)]),
    ] {
        check(
            net(17, vec![node(op, op, &["a"], &["y"], attrs)], vec![]),
            op,
        );
    }
    let slopes = f32s("s", &[4, 1, 1], &[0.1, 0.25, -0.5, 1.5]);
    check(
        net(
            13,
            vec![node("PRelu", "prelu", &["a", "s"], &["y"], vec![])],
            vec![slopes],
        ),
        "PRelu per channel",
    );
}

#[test]
fn data_movement_and_reductions() {
    let pads = i64s("p", &[8], &[0, 0, 1, 2, 0, 0, 2, 1]);
    for mode in ["constant", "reflect", "edge"] {
        check(
            net(
                13,
                vec![node(
                    "Pad",
                    "pad",
                    &["a", "p"],
                    &["y"],
                    vec![string("mode", mode)],
                )],
                vec![pads.clone()],
            ),
            &format!("Pad {mode}"),
        );
    }
    for (op, keep) in [("ReduceMean", 1), ("ReduceMax", 0)] {
        check(
            net(
                13,
                vec![node(
                    op,
                    op,
                    &["a"],
                    &["y"],
                    vec![ints("axes", &[2, 3]), int("keepdims", keep)],
                )],
                vec![],
            ),
            op,
        );
    }
    // Squeeze-excitation as some exports write it: a pooled vector [1, C], unsqueezed back to
    // [1, C, 1, 1] and multiplied into the map.
    let axes = i64s("ax", &[2], &[2, 3]);
    check(
        net(
            13,
            vec![
                node(
                    "ReduceMean",
                    "pool",
                    &["a"],
                    &["r"],
                    vec![ints("axes", &[2, 3]), int("keepdims", 0)],
                ),
                node("Unsqueeze", "unsq", &["r", "ax"], &["u"], vec![]),
                node("Mul", "scale", &["a", "u"], &["y"], vec![]),
            ],
            vec![axes],
        ),
        "Unsqueeze (squeeze-excitation)",
    );
    check(
        net(
            13,
            vec![node(
                "Transpose",
                "tr",
                &["a"],
                &["y"],
                vec![ints("perm", &[0, 3, 1, 2])],
            )],
            vec![],
        ),
        "Transpose",
    );
    // Inference: Dropout is the identity, whatever its ratio.
    check(
        net(
            13,
            vec![node("Dropout", "drop", &["a", "ratio"], &["y"], vec![])],
            vec![f32s("ratio", &[], &[0.5])],
        ),
        "Dropout",
    );
}

#[test]
fn channel_selections() {
    // Slice channels 1..4 step 2; Split 1 + 3 (the second part is the output); Gather [0, 2].
    let st = |v: &[i64]| i64s("s", &[v.len() as i64], v);
    check(
        net(
            13,
            vec![node(
                "Slice",
                "slice",
                &["a", "s", "e", "ax", "sp"],
                &["y"],
                vec![],
            )],
            vec![
                st(&[1]),
                i64s("e", &[1], &[4]),
                i64s("ax", &[1], &[1]),
                i64s("sp", &[1], &[2]),
            ],
        ),
        "Slice",
    );
    check(
        net(
            13,
            vec![node(
                "Split",
                "split",
                &["a", "s"],
                &["p", "y"],
                vec![int("axis", 1)],
            )],
            vec![st(&[1, 3])],
        ),
        "Split",
    );
    check(
        net(
            13,
            vec![node(
                "Gather",
                "gather",
                &["a", "s"],
                &["y"],
                vec![int("axis", 1)],
            )],
            vec![st(&[0, 2])],
        ),
        "Gather",
    );
}

#[test]
fn resize_modes() {
    let roi = f32s("roi", &[0], &[]);
    for (mode, coord, scale) in [
        ("linear", "align_corners", 2.0),
        ("linear", "half_pixel", 1.5),
        ("linear", "asymmetric", 0.5),
        ("nearest", "half_pixel", 1.5),
        ("nearest", "align_corners", 2.0),
        // 6 x scale not whole: align_corners divides by 6 x scale - 1, not by the output
        // length - 1 (ONNX's reference and tract)
        ("linear", "align_corners", 0.6),
        ("linear", "align_corners", 1.7),
        ("nearest", "align_corners", 1.7),
    ] {
        let scales = f32s("sc", &[4], &[1.0, 1.0, scale, scale]);
        check(
            net(
                13,
                vec![node(
                    "Resize",
                    "resize",
                    &["a", "roi", "sc"],
                    &["y"],
                    vec![
                        string("mode", mode),
                        string("coordinate_transformation_mode", coord),
                    ],
                )],
                vec![roi.clone(), scales],
            ),
            &format!("Resize {mode} {coord} x{scale}"),
        );
    }
}

/// Opset 18: sizes of some axes only (`axes`, in either order), and one scale for both axes
/// (`keep_aspect_ratio_policy`), which the coordinates use too.
#[test]
fn resize_axes_and_aspect_ratio() {
    let roi = f32s("roi", &[0], &[]);
    for (axes, sizes, policy, mode) in [
        ([2, 3], [9, 12], "not_larger", "linear"),
        ([3, 2], [9, 12], "not_smaller", "nearest"),
        ([-1, -2], [4, 3], "stretch", "linear"),
    ] {
        check(
            net(
                18,
                vec![node(
                    "Resize",
                    "resize",
                    &["a", "roi", "", "sz"],
                    &["y"],
                    vec![
                        string("mode", mode),
                        ints("axes", &axes),
                        string("keep_aspect_ratio_policy", policy),
                    ],
                )],
                vec![roi.clone(), i64s("sz", &[2], &sizes)],
            ),
            &format!("Resize {mode} axes {axes:?} sizes {sizes:?} {policy}"),
        );
    }
}

/// auto_pad SAME_UPPER / SAME_LOWER (output = input x stride) and output_shape (extra rows and
/// columns at the end: the bias only).
#[test]
fn conv_transpose_auto_pad_and_output_shape() {
    let w: Vec<f32> = (0..4 * 4 * 9)
        .map(|i| ((i * 3 % 7) as f32 - 3.0) / 8.0)
        .collect();
    let wt = f32s("wt", &[4, 4, 3, 3], &w);
    let bias = f32s("bias", &[4], &[0.25, -0.5, 0.125, 0.0]);
    for (s, label, extra) in [
        (2, "SAME_UPPER", vec![string("auto_pad", "SAME_UPPER")]),
        (2, "SAME_LOWER", vec![string("auto_pad", "SAME_LOWER")]),
        (1, "SAME_UPPER", vec![string("auto_pad", "SAME_UPPER")]),
        // 13x13 reached: one more row
        (
            2,
            "output_shape 14x13",
            vec![ints("output_shape", &[14, 13])],
        ),
        // 18x18 reached, output_padding 1x2: one more row
        (
            3,
            "output_shape 20x20, output_padding 1x2",
            vec![
                ints("output_shape", &[20, 20]),
                ints("output_padding", &[1, 2]),
            ],
        ),
    ] {
        let mut attrs = vec![ints("strides", &[s, s])];
        attrs.extend(extra);
        let name = format!("ConvTranspose k3 s{s} {label}");
        check(
            net(
                13,
                vec![node(
                    "ConvTranspose",
                    "convt",
                    &["a", "wt", "bias"],
                    &["y"],
                    attrs,
                )],
                vec![wt.clone(), bias.clone()],
            ),
            &name,
        );
    }
}

#[test]
fn conv_transpose_geometry() {
    for (k, s, p, op, g) in [
        (3, 2, 1, 1, 1),
        (2, 2, 0, 0, 2),
        (3, 1, 1, 0, 4),
        (4, 2, 1, 0, 1),
    ] {
        let w: Vec<f32> = (0..4 * (4 / g) * k * k)
            .map(|i| ((i * 3 % 7) as f32 - 3.0) / 8.0)
            .collect();
        let wt = f32s("wt", &[4, (4 / g) as i64, k as i64, k as i64], &w);
        let attrs = vec![
            ints("strides", &[s, s]),
            ints("pads", &[p, p, p, p]),
            ints("output_padding", &[op, op]),
            int("group", g as i64),
        ];
        check(
            net(
                13,
                vec![node("ConvTranspose", "convt", &["a", "wt"], &["y"], attrs)],
                vec![wt],
            ),
            &format!("ConvTranspose k{k} s{s} p{p} op{op} g{g}"),
        );
    }
}

/// A PyTorch-style `x.view(x.shape[0], -1)`: `Shape -> Gather -> Cast -> Unsqueeze -> Concat`
/// computes the new shape from the activation's static shape. Shape and Cast are not ops the
/// importer implements: tract's analysis evaluates the whole subgraph to a constant, the
/// importer takes it as such (Gather, Unsqueeze and Concat of constants are folded too), and
/// the Reshape (a flatten into a fully connected layer) reads it.
#[test]
fn shape_arithmetic_is_folded_by_tract() {
    let to_int64 = int("to", 7);
    let wg: Vec<f32> = (0..5 * 144)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) / 64.0)
        .collect();
    let m = net(
        13,
        vec![
            node("Shape", "shape", &["a"], &["s"], vec![]),
            node(
                "Gather",
                "batch",
                &["s", "zero"],
                &["n"],
                vec![int("axis", 0)],
            ),
            node("Cast", "cast", &["n"], &["n64"], vec![to_int64]),
            node("Unsqueeze", "unsq", &["n64", "axes"], &["n1"], vec![]),
            node(
                "Concat",
                "spec",
                &["n1", "minus_one"],
                &["shp"],
                vec![int("axis", 0)],
            ),
            node("Reshape", "view", &["a", "shp"], &["v"], vec![]),
            node("Gemm", "fc", &["v", "wg"], &["y"], vec![int("transB", 1)]),
        ],
        vec![
            f32s("wg", &[5, 144], &wg),
            i64s("zero", &[], &[0]),
            i64s("axes", &[1], &[0]),
            i64s("minus_one", &[1], &[-1]),
        ],
    );
    check(m, "folded shape arithmetic");
}

/// A QuantizeLinear without a zero point quantizes to uint8 with zero point 0 (ONNX's
/// default), so negative values clamp to 0; its DequantizeLinear reads the same type.
#[test]
fn quantize_linear_without_zero_point_is_uint8() {
    let m = net(
        13,
        vec![
            node("QuantizeLinear", "q", &["a", "s"], &["aq"], vec![]),
            node("DequantizeLinear", "dq", &["aq", "s"], &["y"], vec![]),
        ],
        vec![f32s("s", &[], &[0.05])],
    );
    let (max, _) = steps(&m, &m, &|_| {}, "uint8 QDQ without zero points");
    assert!(max <= 1.01, "max {max} steps");
}

/// A QuantizeLinear rounds its input for its own readers only: where another node reads the
/// same tensor in float (a QOperator file's Relu output feeding both the next QLinearConv and
/// a float op), the float reader must see the unrounded values. Here `y = 8 a + DQ(Q(a))`
/// with a coarse Q (step 0.25): had `a` taken Q's quantization, `8 a` would be off by up to
/// 8 x 0.125 = 1.0 (measured when the importer did that: 5.8 output steps at most, 2.1 on
/// average; now 2.25 and 0.38).
#[test]
fn quantize_linear_leaves_float_readers_unrounded() {
    let m = net(
        13,
        vec![
            node("QuantizeLinear", "q", &["a", "s", "z"], &["aq"], vec![]),
            node("DequantizeLinear", "dq", &["aq", "s", "z"], &["ad"], vec![]),
            node("Mul", "times8", &["a", "eight"], &["a8"], vec![]),
            node("Add", "sum", &["a8", "ad"], &["y"], vec![]),
        ],
        vec![
            f32s("s", &[], &[0.25]),
            int8s("z", 3, &[], &[0]),
            f32s("eight", &[], &[8.0]),
        ],
    );
    check(m, "QuantizeLinear with a float reader beside it");
}
