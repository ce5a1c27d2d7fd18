//! `edgeslim export --tflite`: the file it writes and its errors. Whether the exported file
//! computes what the runtime computes is checked against LiteRT in
//! `tests/tests/tflite_export.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

    // An op with no TFLite form yet is named with its index and kind.
    let unet = dir.join("unet.esm");
    let unet_s = unet.to_str().expect("utf-8 path");
    ok(&[
        "compile",
        "tests/data/conformance/unet_segdepth_64/model_qdq_u8.onnx",
        "-o",
        unet_s,
    ]);
    let err = fails(&[
        "export",
        unet_s,
        "--tflite",
        "-o",
        dir.join("unet.tflite").to_str().expect("utf-8 path"),
    ]);
    assert!(
        err.contains("cannot be exported to TFLite") && err.contains("op "),
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
