//! `edgeslim bench --target cortex-m4` end to end: the bundled digits-mtl model built into the
//! firmware's `opbench` program and run in QEMU (exact instruction counts, no timing).
//!
//! It needs Debian's rustc, qemu-system-arm and defmt-print (`cargo xtask setup`). Without them
//! these tests say so and pass, except under `CI=true`, where the test command installs them
//! first: a missing tool there fails. With `CMSIS_NN_DIR` set (and arm-none-eabi-gcc), every
//! convolution and fully connected op must also equal CMSIS-NN's output byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeslim_compiler::npy::NpyData;
use edgeslim_compiler::{Array, read_npy, read_npz, write_f32};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeslim-m4-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

fn edgeslim_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(dir)
        .env_remove("EDGESLIM_FIRMWARE_DIR")
        .output()
        .expect("the edgeslim binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = edgeslim_in(&root(), args);
    assert!(
        out.status.success(),
        "edgeslim {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the QEMU tests can run here; under CI=true a missing tool fails the test.
fn toolchain() -> bool {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/rustc").is_file() {
        missing.push("Debian's rustc (rustc-web)");
    }
    for tool in ["qemu-system-arm", "defmt-print"] {
        if !on_path(tool) {
            missing.push(tool);
        }
    }
    if std::env::var_os("CMSIS_NN_DIR").is_some_and(|d| !d.is_empty())
        && !on_path("arm-none-eabi-gcc")
    {
        missing.push("arm-none-eabi-gcc (CMSIS_NN_DIR is set)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "bench --target cortex-m4 needs {}: run `cargo xtask setup`",
        missing.join(", ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("skipped: {msg}");
    false
}

fn cmsis() -> bool {
    std::env::var_os("CMSIS_NN_DIR").is_some_and(|d| !d.is_empty())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a count: {v}"))
}

/// The int8 outputs `edgeslim run --raw` writes for `input` at `width`, by output name, in the
/// NHWC order of the firmware's log.
fn host_outputs(esm: &str, input: &Path, width: &str, dir: &Path) -> Vec<(String, Vec<i8>)> {
    let out_dir = dir.join(format!("run-{}", width.replace([',', '='], "_")));
    ok(&[
        "run",
        esm,
        "--input",
        input.to_str().expect("utf-8"),
        "--output-dir",
        out_dir.to_str().expect("utf-8"),
        "--width",
        width,
        "--raw",
    ]);
    let mut outs = Vec::new();
    for e in std::fs::read_dir(&out_dir).expect("run outputs") {
        let path = e.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_owned();
        let NpyData::I8(a) = read_npy(&path).expect("npy") else {
            panic!("{} is not int8", path.display())
        };
        // NCHW [1, C, H, W] -> NHWC; vectors as they are.
        let data = if a.shape.len() == 4 {
            let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3]);
            let mut v = Vec::with_capacity(a.data.len());
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        v.push(a.data[(ch * h + y) * w + x]);
                    }
                }
            }
            v
        } else {
            a.data
        };
        outs.push((name, data));
    }
    outs
}

/// The bundled model on the M4: per-op counts that add up, MACs equal to `inspect`'s,
/// outputs equal to `edgeslim run` on the host, CMSIS-NN byte-equal when built.
#[test]
fn bench_cortex_m4_digits() {
    if !toolchain() {
        return;
    }
    let tmp = scratch("digits");
    let src = root().join("models/digits-mtl");
    // A blob next to the model's eval set: bench and run see the same model and input.
    let esm = tmp.join("digits.esm");
    let esm_s = esm.to_str().expect("utf-8");
    ok(&[
        "compile",
        src.join("model.onnx").to_str().expect("utf-8"),
        "-o",
        esm_s,
    ]);
    std::fs::copy(src.join("eval.npz"), tmp.join("eval.npz")).expect("copy eval.npz");
    let x = read_npz(&tmp.join("eval.npz"))
        .expect("eval.npz")
        .remove("x")
        .expect("x")
        .into_f32()
        .expect("float");
    let per: usize = x.shape[1..].iter().product();
    let mut shape = x.shape.clone();
    shape[0] = 1;
    let input = tmp.join("input.npy");
    write_f32(
        &input,
        &Array {
            shape,
            data: x.data[..per].to_vec(),
        },
    )
    .expect("input.npy");

    let stdout = ok(&["bench", esm_s, "--target", "cortex-m4", "--json"]);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{stdout}"));
    assert_eq!(r["format"], "edgeslim.bench/1");
    assert_eq!(r["target"], "cortex-m4");
    assert!(
        r["input"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("eval.npz")),
        "{}",
        r["input"]
    );
    let inspect: Value =
        serde_json::from_str(&ok(&["inspect", esm_s, "--json"])).expect("inspect JSON");
    let m4 = &r["cortex_m4"];
    let configs = m4["configs"].as_array().expect("configs");
    let labels: Vec<&str> = configs.iter().filter_map(|c| c["label"].as_str()).collect();
    assert_eq!(labels, ["widest", "narrowest"]);
    let tick = u(&m4["instructions_per_tick"]);
    for c in configs {
        let label = c["label"].as_str().unwrap_or("?");
        let ops = c["ops"].as_array().expect("ops");
        assert!(!ops.is_empty());
        // Every op that computes something costs instructions (a Reshape is a view).
        for o in ops {
            let i = u(&o["instructions"]);
            assert_eq!(i % tick, 0, "{o}");
            if o["kind"] != "Reshape" {
                assert!(i > 0, "{label}: {o}");
            }
        }
        // The ops and the interpreter's overhead make up the observed run exactly.
        let sum: u64 = ops.iter().map(|o| u(&o["instructions"])).sum();
        assert_eq!(sum, u(&c["ops_instructions"]), "{label}");
        assert_eq!(
            sum + u(&c["overhead_instructions"]),
            u(&c["observed_instructions"]),
            "{label}"
        );
        // The observer adds its clock reads and bookkeeping (about 160 instructions per op on
        // digits-mtl), nothing else: the unobserved inference is at most as long, and shorter
        // by less than 250 instructions per op.
        let (whole, observed) = (u(&c["instructions"]), u(&c["observed_instructions"]));
        assert!(
            whole > 0 && whole <= observed + tick,
            "{label}: {whole} vs {observed}"
        );
        assert!(
            observed - whole.min(observed) <= 250 * ops.len() as u64 + tick,
            "{label}: the observed run is {observed}, the whole {whole}: more than the \
             observer's cost on {} ops",
            ops.len()
        );
        // MACs: the firmware's, from the active shapes, against inspect's for this config.
        let want = inspect["configs"]
            .as_array()
            .expect("inspect configs")
            .iter()
            .find(|k| k["indices"] == c["widths"])
            .unwrap_or_else(|| panic!("inspect has no config {}", c["widths"]));
        assert_eq!(c["macs"], want["macs"], "{label}");
        let op_macs: u64 = ops.iter().map(|o| u(&o["macs"])).sum();
        assert_eq!(op_macs, u(&c["macs"]));
        // The outputs: bit for bit those of `edgeslim run` on the host.
        let width = c["config"].as_str().expect("config");
        let host = host_outputs(esm_s, &input, width, &tmp);
        let outs = c["outputs"].as_array().expect("outputs");
        assert_eq!(outs.len(), host.len(), "{label}");
        for (name, data) in &host {
            let m4_out = outs
                .iter()
                .find(|o| o["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{label}: no output {name} from the M4"));
            let got: Vec<i8> = m4_out["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|v| v.as_i64().expect("int8") as i8)
                .collect();
            assert_eq!(&got, data, "{label}: output {name}");
        }
        // CMSIS-NN: every convolution / fully connected op byte-equal, or not measured.
        for o in ops {
            let layer = matches!(o["kind"].as_str(), Some("conv" | "depthwise" | "fc"));
            if cmsis() && layer {
                assert_eq!(o["cmsis_nn_check"], "equal", "{label}: {o}");
                assert!(u(&o["cmsis_nn_instructions"]) > 0, "{o}");
            } else if cmsis() {
                assert_eq!(o["cmsis_nn_check"], "unsupported", "{o}");
            } else {
                assert_eq!(o["cmsis_nn_check"], "not measured", "{o}");
                assert!(o["cmsis_nn_instructions"].is_null(), "{o}");
            }
        }
        assert_eq!(c["cmsis_nn_layers"].is_object(), cmsis(), "{label}");
    }
    for ag in r["agreement"].as_array().expect("agreement") {
        if ag["reference"] == "cmsis-nn" && !cmsis() {
            assert!(ag["ok"].is_null());
            assert!(
                ag["not_checked"]
                    .as_str()
                    .is_some_and(|s| s.contains("CMSIS_NN_DIR"))
            );
        } else {
            assert_eq!(ag["ok"], true, "{ag}");
        }
    }
    let cm: Vec<&Value> = r["engines"]
        .as_array()
        .expect("engines")
        .iter()
        .filter(|e| e["engine"] == "cmsis-nn")
        .collect();
    assert_eq!(cm.len(), 2);
    for e in cm {
        assert_eq!(e["not_measured"].is_null(), cmsis(), "{e}");
    }

    // The text report of the ONNX file, at one chosen width.
    let text = ok(&[
        "bench",
        "models/digits-mtl/model.onnx",
        "--target",
        "cortex-m4",
        "--width",
        "encoder=0.5",
    ]);
    for want in [
        "target cortex-m4",
        "encoder=0.5 (encoder=0.5,digit=1,bold=1)",
        "whole model:",
        "instructions/MAC",
        "overhead",
        "outputs equal to the host interpreter's, bit for bit: yes",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("DIFFER") && !text.contains(": NO"), "{text}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The errors that need no QEMU: outside the repository, and without the tools.
#[test]
fn bench_cortex_m4_errors() {
    let tmp = scratch("errors");
    let model = root().join("models/digits-mtl/model.onnx");
    let model = model.to_str().expect("utf-8");
    let out = edgeslim_in(&tmp, &["bench", model, "--target", "cortex-m4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no firmware directory") && err.contains("EDGESLIM_FIRMWARE_DIR"),
        "{err}"
    );
    // No qemu-system-arm or defmt-print on an empty PATH: named, with the fix.
    let out = Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(["bench", model, "--target", "cortex-m4"])
        .current_dir(root())
        .env("PATH", &tmp)
        .env_remove("EDGESLIM_FIRMWARE_DIR")
        .env_remove("CMSIS_NN_DIR")
        .output()
        .expect("edgeslim runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in ["qemu-system-arm", "defmt-print", "cargo xtask setup"] {
        assert!(err.contains(want), "{want:?} missing: {err}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
