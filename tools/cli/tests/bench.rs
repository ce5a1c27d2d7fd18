//! `edgeslim bench` end to end with few iterations: the JSON structure, every installed engine
//! measured, edgeslim agreeing with tract and ONNX Runtime; `.esm` models without an ONNX
//! file; the errors. Also `edgeslim profile` on a single-segment model. No timing assertion:
//! the machine is shared.
//!
//! ONNX Runtime is installed by `cargo xtask setup` (`models/requirements-check.txt`). When it
//! is missing these tests fail and say so, unless `EDGESLIM_TEST_WITHOUT_ORT=1` says it is
//! absent on purpose.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeslim_search::LatencyTable;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeslim-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

fn edgeslim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the edgeslim binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = edgeslim(args);
    assert!(
        out.status.success(),
        "edgeslim {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = edgeslim(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "edgeslim {args:?} should fail with a clean error: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one error line: {err}"
    );
    err
}

fn json(args: &[&str]) -> Value {
    let stdout = ok(args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bench JSON: {e}\n{stdout}"))
}

/// Whether ONNX Runtime may be missing: only when the environment says so.
fn ort_may_be_absent() -> bool {
    std::env::var("EDGESLIM_TEST_WITHOUT_ORT").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn engines<'v>(r: &'v Value, name: &str) -> Vec<&'v Value> {
    r["engines"]
        .as_array()
        .expect("engines list")
        .iter()
        .filter(|e| e["engine"] == name)
        .collect()
}

/// A measured engine's statistics are consistent: `iters` calls, p10 <= median <= p90.
fn check_stats(e: &Value, iters: u64) {
    let s = &e["stats"];
    assert!(
        s.is_object(),
        "{} not measured: {}",
        e["label"],
        e["not_measured"]
    );
    assert!(e["not_measured"].is_null());
    assert_eq!(s["n"].as_u64(), Some(iters), "{e}");
    let f = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert!(f("median_us") > 0.0, "{e}");
    assert!(
        f("p10_us") <= f("median_us") && f("median_us") <= f("p90_us"),
        "{e}"
    );
    assert!(f("min_us") <= f("p10_us") && f("mad_us") >= 0.0, "{e}");
}

/// The checks every bench report must pass; returns the number of edgeslim entries. On a real
/// sample (`ort_agrees`), ONNX Runtime's outputs must agree too; on pseudo-random inputs far
/// outside the calibration data its fused int8 kernels may saturate, and only tract, the
/// reference, is held to it.
fn check_report(r: &Value, iters: u64, ort_agrees: bool) -> usize {
    assert_eq!(r["format"], "edgeslim.bench/1");
    assert_eq!(r["target"], "host");
    assert_eq!(r["iters"].as_u64(), Some(iters));
    assert!(r["input"]["shape"].as_array().is_some_and(|s| s[0] == 1));
    let ours = engines(r, "edgeslim");
    assert!(!ours.is_empty());
    for e in &ours {
        check_stats(e, iters);
        assert!(e["config"].as_str().is_some_and(|c| c.contains('=')), "{e}");
    }
    // tract is built in: it must have run.
    let tract = engines(r, "tract");
    assert_eq!(tract.len(), 1);
    check_stats(tract[0], iters);
    let ort = engines(r, "onnxruntime");
    assert_eq!(ort.len(), 1);
    let ort = ort[0];
    if ort["stats"].is_null() {
        assert!(
            ort_may_be_absent(),
            "ONNX Runtime was not measured: {}. Install it with `python3 -m pip install -r \
             models/requirements-check.txt` (or `cargo xtask setup`), or set \
             EDGESLIM_TEST_WITHOUT_ORT=1 if it is absent on purpose",
            ort["not_measured"]
        );
        assert!(ort["not_measured"].as_str().is_some_and(|s| !s.is_empty()));
    } else {
        check_stats(ort, iters);
        let h = &ort["harness"];
        let raw = h["raw"]["median_us"].as_f64().expect("raw median");
        let overhead = h["overhead"]["median_us"]
            .as_f64()
            .expect("overhead median");
        let net = ort["stats"]["median_us"].as_f64().expect("median");
        assert!(overhead > 0.0);
        assert!(
            (net - (raw - overhead).max(0.0)).abs() <= 1e-6 * raw.max(1.0),
            "net = raw - overhead: {h}"
        );
    }
    // A ratio per edgeslim entry and other engine, a number where both were measured.
    let ratios = r["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), ours.len() * 2);
    for x in ratios {
        let measured = |name: &str| {
            r["engines"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| (e["label"] == name || e["engine"] == name) && e["stats"].is_object())
        };
        let both = measured(x["edgeslim"].as_str().unwrap_or(""))
            && measured(x["versus"].as_str().unwrap_or(""));
        assert_eq!(x["ratio"].as_f64().is_some_and(|v| v > 0.0), both, "{x}");
    }
    // edgeslim agrees with every reference that ran.
    for ag in r["agreement"].as_array().expect("agreement") {
        let reference = ag["reference"].as_str().unwrap_or("?");
        if reference == "onnxruntime" && ort["stats"].is_null() {
            assert!(ag["ok"].is_null(), "{ag}");
            continue;
        }
        assert_eq!(
            ag["role"],
            if reference == "tract" {
                "check"
            } else {
                "information"
            }
        );
        if reference == "onnxruntime" && !ort_agrees {
            assert!(ag["ok"].is_boolean(), "compared: {ag}");
            continue;
        }
        assert_eq!(ag["ok"], true, "edgeslim vs {reference}: {ag}");
        let outs = ag["outputs"].as_array().expect("outputs");
        assert!(!outs.is_empty());
        for o in outs {
            assert_eq!(o["ok"], true, "{o}");
            if let Some(b) = o["max_steps_bound"].as_f64() {
                assert!(o["max_steps"].as_f64().expect("max_steps") <= b, "{o}");
            }
            if let Some(t) = o["top1"].as_array() {
                assert_eq!(t[0], t[1], "top-1 of {o}");
            }
        }
    }
    ours.len()
}

#[test]
fn bench_bundled_float_model() {
    let r = json(&[
        "bench",
        "models/digits-mtl/model.onnx",
        "--iters",
        "5",
        "--json",
    ]);
    assert_eq!(r["source"], "float");
    assert_eq!(
        check_report(&r, 5, true),
        2,
        "widest and narrowest by default"
    );
    let labels: Vec<&str> = engines(&r, "edgeslim")
        .iter()
        .filter_map(|e| e["label"].as_str())
        .collect();
    assert_eq!(labels, ["edgeslim widest", "edgeslim narrowest"]);
    // The bundled model's eval sample is the input.
    assert!(
        r["input"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("eval.npz")),
        "{}",
        r["input"]
    );
    // Two classifier tasks: both compared, top-1 included.
    let tract = &r["agreement"][0];
    assert_eq!(tract["reference"], "tract");
    assert_eq!(tract["outputs"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bench_conformance_qdq_model() {
    let r = json(&[
        "bench",
        "tests/data/conformance/dscnn_kws/model_qdq_u8.onnx",
        "--iters",
        "5",
        "--json",
    ]);
    assert_eq!(r["source"], "prequantized");
    assert_eq!(
        check_report(&r, 5, true),
        1,
        "a single-width model: one configuration"
    );
    assert!(
        r["input"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("inputs.npy"))
    );
    let o = &r["agreement"][0]["outputs"][0];
    assert!(o["top1"].is_array(), "12 keyword scores: a classifier: {o}");
    assert!(
        o["max_steps_bound"].is_number(),
        "a pre-quantized file has a step bound"
    );
}

#[test]
fn bench_text_and_widths() {
    let out = ok(&[
        "bench",
        "models/digits-mtl/model.onnx",
        "--iters",
        "3",
        "--width",
        "encoder=0.5",
        "--width",
        "encoder=0.25,digit=0.25,bold=0.25",
    ]);
    for want in [
        "edgeslim encoder=0.5 ",
        "edgeslim encoder=0.25,digit=0.25,bold=0.25",
        "tract",
        "onnxruntime",
        "time ratio",
        "agreement",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    // The configuration in full: the segments not named run at full width.
    assert!(out.contains("encoder=0.5,digit=1,bold=1"), "{out}");
    assert!(!out.contains("DISAGREE"), "{out}");
}

#[test]
fn bench_blob_with_and_without_onnx() {
    let tmp = scratch("blob");
    let esm = tmp.join("dscnn.esm");
    let esm_s = esm.to_str().expect("utf-8 temp path");
    let onnx = "tests/data/conformance/dscnn_kws/model_qdq_u8.onnx";
    ok(&["compile", onnx, "-o", esm_s]);

    // No ONNX file: edgeslim alone, the others "not measured" with the reason, exit 0.
    let r = json(&["bench", esm_s, "--iters", "3", "--json"]);
    assert_eq!(r["source"], "blob");
    for name in ["tract", "onnxruntime"] {
        let e = engines(&r, name)[0];
        assert!(e["stats"].is_null());
        let why = e["not_measured"].as_str().expect("a reason");
        assert!(why.contains("--onnx"), "{why}");
    }
    check_stats(engines(&r, "edgeslim")[0], 3);
    assert!(
        r["ratios"]
            .as_array()
            .expect("ratios")
            .iter()
            .all(|x| x["ratio"].is_null())
    );
    assert!(
        r["agreement"]
            .as_array()
            .expect("agreement")
            .iter()
            .all(|a| a["ok"].is_null())
    );
    assert!(
        r["input"]["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("pseudo-random")),
        "no sample beside the blob: {}",
        r["input"]
    );
    let text = ok(&["bench", esm_s, "--iters", "2"]);
    assert!(text.contains("not measured"), "{text}");

    // With its ONNX file: the full comparison.
    let r = json(&["bench", esm_s, "--onnx", onnx, "--iters", "3", "--json"]);
    check_report(&r, 3, false);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn bench_errors() {
    let err = fails(&["bench", "models/digits-mtl/model.onnx", "--target", "riscv"]);
    assert!(
        err.contains("riscv") && err.contains("supported targets: host, cortex-m4"),
        "{err}"
    );
    let err = fails(&[
        "bench",
        "models/digits-mtl/model.onnx",
        "--width",
        "encoder=0.3",
    ]);
    assert!(err.contains("encoder") && err.contains("0.3"), "{err}");
    // A float model with no calibration data anywhere.
    let tmp = scratch("float");
    let lone = tmp.join("model.onnx");
    std::fs::copy(root().join("models/digits-mtl/model.onnx"), &lone).expect("copy");
    let err = fails(&["bench", lone.to_str().expect("utf-8"), "--iters", "1"]);
    assert!(err.contains("--calib"), "{err}");
    let err = fails(&["bench", "no/such/model.esm"]);
    assert!(err.contains("no/such/model.esm"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `profile` on a plain single-segment network (no slimming manifest): a table with the
/// encoder alone and its whole configurations.
#[test]
fn profile_single_segment_model() {
    let tmp = scratch("profile");
    let esm = tmp.join("resnet8.esm");
    let table = tmp.join("latency.json");
    let (esm_s, table_s) = (esm.to_str().expect("utf-8"), table.to_str().expect("utf-8"));
    ok(&[
        "compile",
        "tests/data/conformance/resnet8_32/model_qdq_u8.onnx",
        "-o",
        esm_s,
    ]);
    let out = ok(&["profile", esm_s, "--reps", "3", "-o", table_s]);
    assert!(out.contains("latency on host"), "{out}");
    let t = LatencyTable::load(&table).expect("a valid latency table");
    assert_eq!(t.segments.len(), 1);
    assert!(t.segments[0].latency_us.iter().all(|&l| l > 0.0));
    assert_eq!(t.configs.len(), t.segments[0].widths.len());
    assert!(t.check_additive().expect("check").is_some());
    let _ = std::fs::remove_dir_all(&tmp);
}
