//! The compiler against tract (the same ONNX run as float / QDQ / QOperator), against its own
//! float reference at narrow widths, on malformed inputs, and the arena against its bound.

use edgeslim_compiler::{Array, CompileOptions, Compiled, compile, reference, run_batch};
use edgeslim_runtime::{Model, TaskMask, WidthConfig};
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn compile_with(name: &str, calib: bool) -> Compiled {
    let opts = CompileOptions {
        calib: calib.then(|| data("calib.npy")),
        ..CompileOptions::default()
    };
    match compile(&data(name), &opts) {
        Ok(c) => c,
        Err(e) => panic!("{name}: {e:#}"),
    }
}

/// Deterministic inputs in [0, 1), NCHW `[n, 3, 8, 8]`.
fn inputs(n: usize, seed: u64) -> Array<f32> {
    let mut s = seed | 1;
    let data = (0..n * 3 * 64)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Array {
        shape: vec![n, 3, 8, 8],
        data,
    }
}

/// tract's outputs for every sample, per graph output.
fn tract_outputs(path: &Path, x: &Array<f32>) -> Vec<Vec<f32>> {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract: {e:#}"));
    let per = x.data.len() / x.shape[0];
    let mut outs: Vec<Vec<f32>> = Vec::new();
    for i in 0..x.shape[0] {
        let t = Tensor::from_shape(&[1, 3, 8, 8], &x.data[i * per..(i + 1) * per])
            .unwrap_or_else(|e| panic!("{e}"));
        let r = model
            .run(tvec!(t.into()))
            .unwrap_or_else(|e| panic!("tract run: {e:#}"));
        for (k, o) in r.iter().enumerate() {
            let v = o
                .to_plain_array_view::<f32>()
                .unwrap_or_else(|e| panic!("{e}"));
            if outs.len() <= k {
                outs.push(Vec::new());
            }
            outs[k].extend(v.iter().copied());
        }
    }
    outs
}

/// Fraction of output elements within `steps` quantization steps of tract.
fn agreement(c: &Compiled, path: &Path, n: usize, steps: f32) -> Vec<(String, f64)> {
    let x = inputs(n, 99);
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    let ours = run_batch(&c.blob, &x, &WidthConfig::full(&m), TaskMask::all(&m))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let theirs = tract_outputs(path, &x);
    // tract returns graph outputs in ONNX order; ours are in task order: match by name.
    let names: Vec<String> = tract_onnx::onnx()
        .model_for_path(path)
        .map(|m| {
            m.output_outlets()
                .unwrap_or(&[])
                .iter()
                .map(|o| m.outlet_label(*o).unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    ours.iter()
        .map(|o| {
            let k = names.iter().position(|n| *n == o.name).unwrap_or(0);
            let t = &theirs[k];
            assert_eq!(t.len(), o.float.data.len(), "{}", o.name);
            let ok = o
                .float
                .data
                .iter()
                .zip(t)
                .filter(|(a, b)| (*a - *b).abs() <= steps * o.quant.0 + 1e-6)
                .count();
            (o.name.clone(), ok as f64 / t.len() as f64)
        })
        .collect()
}

/// `steps`-step agreement of at least `frac` on every output.
fn assert_agrees(name: &str, calib: bool, steps: f32, frac_min: f64) {
    let c = compile_with(name, calib);
    for (out, frac) in agreement(&c, &data(name), 64, steps) {
        eprintln!(
            "{name} {out}: {:.2}% within {steps} steps of tract",
            frac * 100.0
        );
        assert!(
            frac >= frac_min,
            "{name} {out}: only {:.2}% within {steps} steps",
            frac * 100.0
        );
    }
}

/// QDQ files state every quantization point, and tract simulates them: the runtime must agree
/// to rounding (2 output steps on 99% of the elements).
fn assert_exact(name: &str) {
    assert_agrees(name, false, 2.0, 0.99);
}

/// Float models compare int8 against float: the difference includes the quantization noise
/// of every intermediate tensor. `tiny_qop.onnx` is built to be awkward for an int8 runtime: a
/// Relu output is both quantized for the next conv and added in float to a residual, and a
/// Relu -> Flatten -> QuantizeLinear rounds at a scale no op of its own carries; such float
/// tensors read unrounded by several consumers can only be approximated with int8 tensors.
/// Measured on these tiny random-weight models: 92-100% within 2 steps, 97-100% within 4.
/// ONNX Runtime's own int8 of `tiny_float.onnx` (`tiny_qdq_u8.onnx`) against its float is no
/// closer: 94.8% of `aux` within 2 steps, 98.4% within 4 (ours: 92.7%, 98.4%). The real
/// networks of `tests/tests/conformance.rs` (QOperator included) are held to 99% within 2
/// steps, and the bundled, trained models to top-1 agreement with their golden outputs in
/// `bundled.rs`.
fn assert_close(name: &str) {
    assert_agrees(name, true, 2.0, 0.90);
    assert_agrees(name, true, 4.0, 0.96);
}

#[test]
fn float_model_matches_tract() {
    assert_close("tiny_float.onnx");
}

#[test]
fn qdq_uint8_model_matches_tract() {
    assert_exact("tiny_qdq_u8.onnx");
}

#[test]
fn qdq_int8_model_matches_tract() {
    assert_exact("tiny_qdq_s8.onnx");
}

#[test]
fn qoperator_model_matches_tract() {
    assert_close("tiny_qop.onnx");
}

#[test]
fn slimmable_model_matches_tract_at_full_width() {
    assert_close("tiny_slim.onnx");
    // Full width uses the file's scales, so the agreement is exact even with --calib (which
    // calibrates the narrower widths only).
    assert_agrees("tiny_slim_qdq.onnx", true, 2.0, 0.99);
}

#[test]
fn slimmable_model_follows_the_float_reference_at_every_width() {
    assert_follows_reference("tiny_slim.onnx", 6);
}

/// A three-stage encoder, each stage at its own width (12 encoder configurations), with a
/// fixed-width skip from stage 1 into the segmentation decoder and a ConvTranspose depth
/// decoder: each of the 12 encoder configurations, with the decoders at each of their widths
/// (24 configurations), follows the float reference.
#[test]
fn per_stage_encoder_widths_follow_the_float_reference_at_every_width() {
    let c = compile_with("tiny_staged.onnx", true);
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.num_encoder_segments(), 3);
    // Stages key on the stage before; decoders on the last stage.
    let ins: Vec<Option<usize>> = (0..m.num_segments()).map(|s| m.segment_in(s)).collect();
    assert_eq!(ins, [None, Some(0), Some(1), Some(2), Some(2)]);
    assert_eq!(c.lowered.n_encoder_configs(), 12);
    assert_eq!(assert_follows_reference("tiny_staged.onnx", 0), 24);
    // The same decoder also reading stage s1's slimmed output depends on three widths.
    let e = compile_err(
        &data("tiny_staged_two_stages.onnx"),
        Some(data("calib.npy")),
    );
    assert!(
        e.contains("/seg/side/Conv") && e.contains("one encoder stage"),
        "{e}"
    );
}

/// Every width configuration of the compiler's grid, run by the runtime, within 3 steps of the
/// compiler's float reference on >= 95% of the elements; returns the configurations checked
/// (at least `min_configs`, or the test fails).
fn assert_follows_reference(name: &str, min_configs: usize) -> usize {
    let c = compile_with(name, true);
    let l = &c.lowered;
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    let x = inputs(32, 5);
    let mut seen = std::collections::BTreeSet::new();
    for (we, d) in l.grid() {
        let idx: Vec<u8> = (0..l.manifest.segments.len())
            .map(|s| l.width_at(s, we, d) as u8)
            .collect();
        if !seen.insert(idx.clone()) {
            continue;
        }
        let cfg = WidthConfig::from_indices(&idx).unwrap_or_else(|e| panic!("{e}"));
        let ours =
            run_batch(&c.blob, &x, &cfg, TaskMask::all(&m)).unwrap_or_else(|e| panic!("{e:#}"));
        let (mut ok, mut total) = (0usize, 0usize);
        for i in 0..32 {
            let s = &x.data[i * 192..(i + 1) * 192];
            let v = reference::run_all(l, &edgeslim_compiler::nchw_to_nhwc(s, 3, 8, 8), we, d);
            for (o, task) in ours.iter().zip(&l.tasks) {
                let t = &l.tensors[task.outputs[0].1];
                let [h, w, ch] = t.shape;
                let r = v[task.outputs[0].1].clone().unwrap_or_default();
                let r = edgeslim_compiler::nhwc_to_nchw(&r, h, w, ch);
                let per = o.float.data.len() / 32;
                assert_eq!(r.len(), per, "widths {idx:?}: reference output size");
                for (a, b) in o.float.data[i * per..(i + 1) * per].iter().zip(&r) {
                    total += 1;
                    if (a - b).abs() <= 3.0 * o.quant.0 {
                        ok += 1;
                    }
                }
            }
        }
        let frac = ok as f64 / total as f64;
        eprintln!(
            "{name} widths {idx:?}: {:.2}% within 3 steps of the float reference",
            frac * 100.0
        );
        assert!(frac >= 0.95, "widths {idx:?}: {:.2}%", frac * 100.0);
    }
    assert!(
        seen.len() >= min_configs.max(1),
        "{name}: {} width configurations checked",
        seen.len()
    );
    seen.len()
}

fn compile_err(path: &Path, calib: Option<PathBuf>) -> String {
    let opts = CompileOptions {
        calib,
        ..CompileOptions::default()
    };
    match compile(path, &opts) {
        Ok(_) => panic!("{} compiled", path.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn malformed_inputs_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("edgeslim-compiler-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(data("tiny_float.onnx")).unwrap_or_else(|e| panic!("{e}"));
    let truncated = dir.join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let e = compile_err(&truncated, Some(data("calib.npy")));
    assert!(e.contains("is not an ONNX model"), "{e}");
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf at all\n").unwrap_or_else(|e| panic!("{e}"));
    let e = compile_err(&junk, Some(data("calib.npy")));
    assert!(e.contains("is not an ONNX model"), "{e}");
    let e = compile_err(&data("unsupported_op.onnx"), Some(data("calib.npy")));
    assert!(
        e.contains("/bad/Erf") && e.contains("Erf") && e.contains("supported: Conv"),
        "{e}"
    );
    let e = compile_err(&data("bad_manifest.onnx"), Some(data("calib.npy")));
    assert!(e.contains("manifest") && e.contains("channel_rule"), "{e}");
    let e = compile_err(&data("bad_widths.onnx"), Some(data("calib.npy")));
    assert!(e.contains("segments[1].widths"), "{e}");
    let e = compile_err(&data("tiny_float.onnx"), Some(data("calib_bad_shape.npy")));
    assert!(
        e.contains("calibration data") && e.contains("[4, 3, 9, 9]") && e.contains("[N, 3, 8, 8]"),
        "{e}"
    );
    let e = compile_err(&data("dynamic.onnx"), Some(data("calib.npy")));
    assert!(e.contains("dynamic"), "{e}");
    let alone = dir.join("alone.onnx");
    std::fs::copy(data("tiny_slim.onnx"), &alone).unwrap_or_else(|e| panic!("{e}"));
    let e = compile_err(&alone, None);
    assert!(e.contains("--calib"), "{e}");
    let e = compile_err(&dir.join("missing.onnx"), None);
    assert!(e.contains("cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn arena_is_within_two_percent_of_the_lower_bound() {
    for (name, calib) in [
        ("tiny_float.onnx", true),
        ("tiny_slim.onnx", true),
        ("tiny_qdq_u8.onnx", false),
        ("tiny_qop.onnx", true),
    ] {
        let r = compile_with(name, calib).report;
        eprintln!(
            "{name}: arena {} B, lower bound {} B",
            r.arena_bytes, r.arena_lower_bound
        );
        assert!(
            r.arena_bytes as f64 <= 1.02 * r.arena_lower_bound as f64,
            "{name}: arena {} > 1.02 x {}",
            r.arena_bytes,
            r.arena_lower_bound
        );
    }
}

#[test]
fn width_specs_are_checked() {
    let c = compile_with("tiny_slim.onnx", true);
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    let w =
        edgeslim_compiler::parse_widths(&m, "encoder=0.5,a=0.25").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.as_slice(), &[0, 0, 1]);
    let err = |s: &str| {
        format!(
            "{:#}",
            edgeslim_compiler::parse_widths(&m, s)
                .err()
                .unwrap_or_else(|| panic!("{s} parsed"))
        )
    };
    assert!(err("decoder=0.5").contains("unknown segment"));
    assert!(err("a=0.3").contains("has no width 0.3"));
    assert!(err("a").contains("malformed"));
    assert!(err("a=x").contains("malformed multiplier"));
    let t = edgeslim_compiler::parse_tasks(&m, "b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.0, 2);
    assert!(edgeslim_compiler::parse_tasks(&m, "c").is_err());
}

/// `--calib` also takes `run --input`'s leading-N layout (`[N, 1, C, H, W]`): the same samples
/// give the same blob.
#[test]
fn calibration_accepts_the_leading_n_layout() {
    let a = edgeslim_compiler::npy::read_f32(&data("calib.npy")).unwrap_or_else(|e| panic!("{e}"));
    assert!(a.shape.len() >= 2, "calibration data has a sample axis");
    let mut shape = vec![a.shape[0], 1];
    shape.extend(&a.shape[1..]);
    let lead = Array {
        shape,
        data: a.data.clone(),
    };
    let dir = std::env::temp_dir().join(format!("edgeslim-calib-lead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let p = dir.join("calib_lead.npy");
    edgeslim_compiler::npy::write_f32(&p, &lead).unwrap_or_else(|e| panic!("{e}"));
    let blob = |calib: PathBuf| {
        let opts = CompileOptions {
            calib: Some(calib),
            ..CompileOptions::default()
        };
        compile(&data("tiny_float.onnx"), &opts)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .blob
    };
    assert_eq!(blob(p), blob(data("calib.npy")));
}
