//! `edgeslim export --tflite`: the file it writes and its errors. Whether the exported file
//! computes what the runtime computes is checked against LiteRT in
//! `tests/tests/tflite_export.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// The compiler tests' in-memory ONNX models (tract-onnx's protobuf types).
#[path = "../../compiler/tests/common/mod.rs"]
mod onnx;

/// `x [1, 4, 6, 6] -> Conv 1x1 -> Resize nearest (asymmetric, ceil) x2 -> y`, with its
/// calibration data (`calib.npy` beside it, which `compile` reads).
fn write_resize_ceil(path: &Path) {
    use onnx::{f32s, node, string};
    use prost::Message;
    let w: Vec<f32> = (0..16).map(|i| ((i * 5 % 9) as f32 - 4.0) / 6.0).collect();
    let m = onnx::model(
        &[1, 4, 6, 6],
        vec![
            node("Conv", "conv", &["x", "w"], &["a"], vec![]),
            node(
                "Resize",
                "resize",
                &["a", "roi", "scales"],
                &["y"],
                vec![
                    string("mode", "nearest"),
                    string("coordinate_transformation_mode", "asymmetric"),
                    string("nearest_mode", "ceil"),
                ],
            ),
        ],
        vec![
            f32s("w", &[4, 4, 1, 1], &w),
            f32s("roi", &[0], &[]),
            f32s("scales", &[4], &[1.0, 1.0, 2.0, 2.0]),
        ],
    );
    std::fs::write(path, m.encode_to_vec()).expect("write model");
    let x = edgeslim_compiler::Array {
        shape: vec![4, 4, 6, 6],
        data: (0..4 * 4 * 36)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect(),
    };
    edgeslim_compiler::write_f32(&path.with_file_name("calib.npy"), &x).expect("write calib");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeslim-export-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
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
        "a clean error, not a panic: {args:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    err
}

#[test]
fn export_writes_tflite_and_names_what_it_cannot_export() {
    let dir = scratch().join("export");
    std::fs::create_dir_all(&dir).expect("dir");
    let blob = dir.join("digits.esm");
    let blob_s = blob.to_str().expect("utf-8 path");
    ok(&["compile", "models/digits-mtl/model.onnx", "-o", blob_s]);

    let whole = dir.join("digits.tflite");
    let out = ok(&[
        "export",
        blob_s,
        "--tflite",
        "--width",
        "encoder=0.5",
        "-o",
        whole.to_str().expect("utf-8 path"),
    ]);
    assert!(out.contains("TFLite operators"), "{out}");
    let bytes = std::fs::read(&whole).expect("tflite written");
    assert_eq!(&bytes[4..8], b"TFL3", "the TFLite file identifier");

    // One decoder alone: its input is the encoder's feature, its output the task's.
    let seg = dir.join("digit.tflite");
    let out = ok(&[
        "export",
        blob_s,
        "--tflite",
        "--segment",
        "digit",
        "-o",
        seg.to_str().expect("utf-8 path"),
    ]);
    assert!(out.contains("outputs: digit"), "{out}");
    assert!(std::fs::read(&seg).expect("segment written").len() < bytes.len());

    let err = fails(&[
        "export",
        blob_s,
        "--tflite",
        "--segment",
        "nope",
        "-o",
        seg.to_str().expect("utf-8 path"),
    ]);
    assert!(
        err.contains("no segment \"nope\"") && err.contains("encoder"),
        "{err}"
    );
    let err = fails(&[
        "export",
        blob_s,
        "--tflite",
        "--width",
        "encoder=0.3",
        "-o",
        seg.to_str().expect("utf-8 path"),
    ]);
    assert!(err.contains("0.3"), "{err}");
    // Without the format flag: clap's usage error (exit 2), nothing written.
    let out = edgeslim(&["export", blob_s, "-o", "never.tflite"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!root().join("never.tflite").exists());

    // An op with no TFLite form is named with its index and kind: a nearest Resize rounding
    // up (ONNX's `ceil`), which no TFLite align_corners / half_pixel_centers setting reads.
    let model = dir.join("resize_ceil.onnx");
    write_resize_ceil(&model);
    let resize = dir.join("resize.esm");
    let resize_s = resize.to_str().expect("utf-8 path");
    ok(&[
        "compile",
        model.to_str().expect("utf-8 path"),
        "-o",
        resize_s,
    ]);
    let err = fails(&[
        "export",
        resize_s,
        "--tflite",
        "-o",
        dir.join("resize.tflite").to_str().expect("utf-8 path"),
    ]);
    assert!(
        err.contains("cannot be exported to TFLite")
            && err.contains("op ")
            && err.contains("Resize")
            && err.contains("ceil"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn npu_profile_through_vela_feeds_search_and_bundle() {
    let dir = scratch().join("npu");
    std::fs::create_dir_all(&dir).expect("dir");
    let blob = dir.join("digits.esm");
    let blob_s = blob.to_str().expect("utf-8 path");
    ok(&["compile", "models/digits-mtl/model.onnx", "-o", blob_s]);
    let table = dir.join("npu.json");
    let table_s = table.to_str().expect("utf-8 path");
    ok(&[
        "profile",
        blob_s,
        "--target",
        "ethos-u55-128",
        "-o",
        table_s,
    ]);
    let t = edgeslim_search::LatencyTable::load(&table).expect("a valid latency table");
    assert_eq!(t.target, "ethos-u55-128");
    assert_eq!(t.segments.len(), 3, "encoder and two decoders");
    let conv = t.conversion.as_ref().expect("the clock is stated");
    assert!(conv.clock_mhz > 0.0);
    // Vela's estimate grows with the width: the widest encoder costs more than the narrowest,
    // and a decoder behind the widest encoder more than behind the narrowest.
    let enc = &t.segments[0].latency_us;
    assert!(enc[enc.len() - 1] > enc[0], "encoder {enc:?}");
    for s in &t.segments[1..] {
        let rows = s.by_encoder_us.as_ref().expect("per encoder width");
        let last = rows[0].len() - 1;
        assert!(
            rows[rows.len() - 1][last] > rows[0][last],
            "{}: {rows:?}",
            s.name
        );
    }
    let budget = format!("{}us", (t.overhead_us + enc[enc.len() - 1]) * 4.0);
    let out = ok(&[
        "search",
        blob_s,
        "--budget",
        &budget,
        "--target",
        "ethos-u55-128",
        "--from-table",
        table_s,
        "--data",
        "models/digits-mtl/eval.npz",
    ]);
    assert!(out.contains("exact:"), "{out}");
    let err = fails(&["profile", blob_s, "--target", "ethos-u55-128", "--cpi", "2"]);
    assert!(err.contains("--cpi"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
