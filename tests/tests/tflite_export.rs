//! TFLite export (`edgeslim export --tflite`, `tools/tflite`) against the LiteRT interpreter.
//!
//! Each model is compiled, exported at several width configurations (whole network, and each
//! segment on its own), and the exported file is run by LiteRT's reference kernels
//! (`tools/tflite/litert_run.py`, the `ai-edge-litert` package) on the int8 input the runtime
//! quantizes; its int8 outputs are compared with the runtime's on the same input. A segment
//! gets the runtime's own values of the tensors it reads (captured through an `Observer`).
//!
//! TFLite's kernels round twice where edgeslim rounds once (`docs/tflite.md`), so an element may
//! be one step off at a rounding tie: the bound is at most 1 step everywhere and at least 99%
//! of elements equal; the figures are printed.

use edgeslim_compiler::{Array, CompileOptions, compile, read_f32, write_i8};
use edgeslim_runtime::{
    Input, Interpreter, Model, Observer, OpData, OpInfo, OpKind, TaskMask, WidthConfig,
};
use edgeslim_tflite::{ExportOptions, Part, export};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn scratch() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tflite_export");
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// Every tensor an inference wrote, by blob tensor index.
struct Capture<'m> {
    model: Model<'m>,
    tensors: HashMap<usize, Vec<i8>>,
}

impl Observer for Capture<'_> {
    fn op_end(&mut self, _index: usize, op: &OpInfo) {
        if op.kind == OpKind::Reshape {
            let src = self.model.op_input(op, 0);
            if let Some(v) = self.tensors.get(&src).cloned() {
                self.tensors.insert(op.output, v);
            }
        }
    }
    fn op_data(&mut self, _index: usize, op: &OpInfo, d: &OpData<'_, '_>) {
        self.tensors.insert(op.output, d.output.to_vec());
    }
}

/// Run LiteRT on `inputs` (one int8 array per graph input, leading axis the samples).
fn litert(tflite: &Path, inputs: &[PathBuf]) -> Vec<Vec<Vec<i32>>> {
    let python = std::env::var("EDGESLIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = workspace().join("tools/tflite/litert_run.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(tflite)
        .args(inputs)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    assert!(
        out.status.success(),
        "LiteRT on {} failed (install with `cargo xtask setup`): {}",
        tflite.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("harness JSON");
    v["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|s| {
            s.as_array()
                .expect("sample")
                .iter()
                .map(|o| {
                    o.as_array()
                        .expect("output")
                        .iter()
                        .map(|x| x.as_i64().expect("int") as i32)
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Samples of `x` (NCHW float) quantized as the runtime quantizes its input, NHWC int8.
fn quantized_inputs(model: &Model<'_>, x: &Array<f32>, n: usize) -> Vec<Vec<i8>> {
    let t = model.input();
    let per = t.h * t.w * t.c;
    let (scale, zp) = model.input_quant();
    x.data
        .chunks_exact(per)
        .take(n)
        .map(|s| {
            let mut nhwc = vec![0f32; per];
            for c in 0..t.c {
                for p in 0..t.h * t.w {
                    nhwc[p * t.c + c] = s[c * t.h * t.w + p];
                }
            }
            let mut q = vec![0i8; per];
            edgeslim_runtime::kernels::reference::quantize(&nhwc, scale, zp, &mut q);
            q
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    elements: usize,
    equal: usize,
    max_diff: i32,
}

/// Export `model` under `opts`, run it in LiteRT on the captured inputs, compare with the
/// captured runtime tensors.
fn check_export(
    label: &str,
    model: &Model<'_>,
    opts: &ExportOptions,
    runs: &[HashMap<usize, Vec<i8>>],
    bound: i32,
    tally: &mut Tally,
) {
    let e = export(model, opts).unwrap_or_else(|err| panic!("{label}: export: {err}"));
    let dir = scratch();
    let file = dir.join(format!("{label}.tflite").replace(['/', ' '], "_"));
    std::fs::write(&file, &e.bytes).expect("write tflite");
    let mut inputs = Vec::new();
    for (k, p) in e.inputs.iter().enumerate() {
        let mut data = Vec::new();
        for r in runs {
            let v = r
                .get(&p.tensor)
                .unwrap_or_else(|| panic!("{label}: input tensor {} not captured", p.tensor));
            assert_eq!(
                v.len(),
                p.shape.iter().product::<usize>(),
                "{label}: input size"
            );
            data.extend_from_slice(v);
        }
        let mut shape = vec![runs.len()];
        shape.extend(&p.shape);
        let path = dir.join(format!("{label}_in{k}.npy").replace(['/', ' '], "_"));
        write_i8(&path, &Array { shape, data }).expect("write input");
        inputs.push(path);
    }
    let got = litert(&file, &inputs);
    assert_eq!(got.len(), runs.len(), "{label}: samples");
    for (s, (g, r)) in got.iter().zip(runs).enumerate() {
        assert_eq!(g.len(), e.outputs.len(), "{label}: outputs");
        for (o, p) in g.iter().zip(&e.outputs) {
            let want = &r[&p.tensor];
            assert_eq!(o.len(), want.len(), "{label}: {} size", p.name);
            for (i, (&a, &b)) in o.iter().zip(want).enumerate() {
                let d = (a - b as i32).abs();
                assert!(
                    d <= bound,
                    "{label}: sample {s} output {} element {i}: LiteRT {a}, edgeslim {b} \
                     (bound {bound})",
                    p.name
                );
                tally.elements += 1;
                tally.equal += (d == 0) as usize;
                tally.max_diff = tally.max_diff.max(d);
            }
        }
    }
}

fn check_model(rel: &str, inputs: &str, samples: usize) {
    let path = workspace().join(rel);
    let calib = path.with_file_name("calib.npy");
    let opts = CompileOptions {
        calib: calib.exists().then_some(calib),
        max_calib_samples: 256,
        progress: false,
    };
    let c = compile(&path, &opts).unwrap_or_else(|e| panic!("{rel}: compile: {e:#}"));
    let model = Model::parse(&c.blob).expect("parse");
    let x = read_f32(&path.with_file_name(inputs)).expect("inputs");
    let xs = quantized_inputs(&model, &x, samples);
    assert!(!xs.is_empty(), "{rel}: no input samples");
    // Width configurations: widest, narrowest, and the encoder narrowest with the rest widest.
    let mut configs = vec![WidthConfig::full(&model), WidthConfig::narrowest(&model)];
    if model.num_segments() > 1 {
        let mut w = WidthConfig::full(&model);
        w.set(0, 0).expect("encoder width");
        configs.push(w);
    }
    configs.dedup_by(|a, b| a.as_slice() == b.as_slice());
    let all = TaskMask::all(&model);
    let (mut whole_tally, mut op_tally) = (Tally::default(), Tally::default());
    let (mut exports, mut op_exports) = (0, 0);
    for (ci, w) in configs.iter().enumerate() {
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut interp = Interpreter::new(&model, &mut arena).expect("interpreter");
        let mut runs = Vec::new();
        for q in &xs {
            let mut cap = Capture {
                model,
                tensors: HashMap::new(),
            };
            cap.tensors.insert(model.input_index(), q.clone());
            interp
                .run_observed(Input::I8(q), w, all, &mut cap)
                .expect("run");
            runs.push(cap.tensors);
        }
        let tag = format!("{rel} {:?}", w.as_slice());
        let whole = ExportOptions {
            widths: *w,
            tasks: all,
            part: Part::All,
        };
        check_export(&tag, &model, &whole, &runs, WHOLE_BOUND, &mut whole_tally);
        exports += 1;
        if model.num_segments() > 1 {
            for s in 0..model.num_segments() {
                let o = ExportOptions {
                    part: Part::Segment(s),
                    ..whole.clone()
                };
                let label = format!("{tag} segment {s}");
                check_export(&label, &model, &o, &runs, WHOLE_BOUND, &mut whole_tally);
                exports += 1;
            }
        }
        // Every op alone on the runtime's own input of it (widest and narrowest): the
        // rounding of one TFLite kernel against the runtime's, nothing propagated.
        if ci < 2 {
            for i in 0..model.num_ops() {
                let o = ExportOptions {
                    part: Part::Op(i),
                    ..whole.clone()
                };
                let label = format!("{tag} op {i}");
                check_export(&label, &model, &o, &runs, 1, &mut op_tally);
                op_exports += 1;
            }
        }
    }
    let pct = |t: &Tally| 100.0 * t.equal as f64 / t.elements.max(1) as f64;
    eprintln!(
        "{rel}: single ops: {op_exports} exports, {} elements, {:.3}% equal, max {} step; \
         whole network and segments: {exports} exports, {} elements, {:.3}% equal, max {} steps",
        op_tally.elements,
        pct(&op_tally),
        op_tally.max_diff,
        whole_tally.elements,
        pct(&whole_tally),
        whole_tally.max_diff
    );
    assert!(
        op_tally.elements > 0 && whole_tally.elements > 0,
        "{rel}: compared nothing"
    );
    assert!(
        pct(&op_tally) >= 99.0,
        "{rel}: only {:.2}% of single-op elements equal LiteRT's",
        pct(&op_tally)
    );
}

/// Largest difference allowed through a whole network, where one-step differences at ties
/// feed the next layers (measured: see docs/tflite.md).
const WHOLE_BOUND: i32 = 8;

#[test]
fn digits_mtl_matches_litert() {
    check_model("models/digits-mtl/model.onnx", "calib.npy", 16);
}

#[test]
fn mnist_mtl_matches_litert() {
    check_model("models/mnist-mtl/model.onnx", "calib.npy", 8);
}

#[test]
fn mcu_bench_mtl_matches_litert() {
    check_model("models/mcu-bench-mtl/model.onnx", "calib.npy", 4);
}

#[test]
fn dscnn_qdq_matches_litert() {
    check_model(
        "tests/data/conformance/dscnn_kws/model_qdq_u8.onnx",
        "inputs.npy",
        8,
    );
}

#[test]
fn mobilenetv2_qdq_matches_litert() {
    check_model(
        "tests/data/conformance/mobilenetv2_035_96/model_qdq_u8.onnx",
        "inputs.npy",
        4,
    );
}

#[test]
fn resnet8_qdq_matches_litert() {
    check_model(
        "tests/data/conformance/resnet8_32/model_qdq_u8.onnx",
        "inputs.npy",
        8,
    );
}

/// Every op of a network that does not export whole (it holds ops with no TFLite form yet),
/// alone at full width on the runtime's own input of it: the ops that export are within one
/// step of the runtime; `must` lists kinds that must be among them.
fn check_ops(rel: &str, inputs: &str, samples: usize, must: &[OpKind]) {
    let path = workspace().join(rel);
    let opts = CompileOptions {
        calib: None,
        max_calib_samples: 0,
        progress: false,
    };
    let c = compile(&path, &opts).unwrap_or_else(|e| panic!("{rel}: compile: {e:#}"));
    let model = Model::parse(&c.blob).expect("parse");
    let x = read_f32(&path.with_file_name(inputs)).expect("inputs");
    let xs = quantized_inputs(&model, &x, samples);
    let w = WidthConfig::full(&model);
    let all = TaskMask::all(&model);
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).expect("interpreter");
    let mut runs = Vec::new();
    for q in &xs {
        let mut cap = Capture {
            model,
            tensors: HashMap::new(),
        };
        cap.tensors.insert(model.input_index(), q.clone());
        interp
            .run_observed(Input::I8(q), &w, all, &mut cap)
            .expect("run");
        runs.push(cap.tensors);
    }
    let mut tally = Tally::default();
    let (mut covered, mut refused) = (Vec::new(), Vec::new());
    for i in 0..model.num_ops() {
        let kind = model.op(i).expect("op").kind;
        let o = ExportOptions {
            widths: w,
            tasks: all,
            part: Part::Op(i),
        };
        match export(&model, &o) {
            Ok(_) => {
                check_export(&format!("{rel} op {i}"), &model, &o, &runs, 1, &mut tally);
                covered.push(kind);
            }
            Err(edgeslim_tflite::ExportError::Unsupported { .. }) => refused.push(kind.name()),
            Err(e) => panic!("{rel} op {i}: {e}"),
        }
    }
    refused.sort();
    refused.dedup();
    let pct = 100.0 * tally.equal as f64 / tally.elements.max(1) as f64;
    eprintln!(
        "{rel}: {} of {} ops alone, {} elements, {pct:.3}% equal, max {} step; not exported: {}",
        covered.len(),
        model.num_ops(),
        tally.elements,
        tally.max_diff,
        refused.join(", ")
    );
    for k in must {
        assert!(
            covered.contains(k),
            "{rel}: no {} op was exported and compared",
            k.name()
        );
    }
    assert!(
        pct >= 99.0,
        "{rel}: only {pct:.2}% of single-op elements equal LiteRT's"
    );
}

#[test]
fn yolo_ops_match_litert() {
    check_ops(
        "tests/data/conformance/yolo_tiny_96/model_qdq_u8.onnx",
        "inputs.npy",
        2,
        &[
            OpKind::Conv2d,
            OpKind::Lut,
            OpKind::Transpose,
            OpKind::MaxPool,
            OpKind::Concat,
        ],
    );
}

#[test]
fn tcn_and_mobilenetv3_ops_match_litert() {
    check_ops(
        "tests/data/conformance/kws_tcn_49x10/model_qdq_u8.onnx",
        "inputs.npy",
        4,
        &[OpKind::Conv2d, OpKind::Pad],
    );
    check_ops(
        "tests/data/conformance/mobilenetv3_small_96/model_qdq_u8.onnx",
        "inputs.npy",
        2,
        &[OpKind::Conv2d, OpKind::Lut, OpKind::Add],
    );
}
