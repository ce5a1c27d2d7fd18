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
    npu_bundle_carries_command_streams(&dir, blob_s, table_s, &budget);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `edgeslim bundle --npu`: every segment each level runs compiled by Vela into a command
/// stream beside the bundle, the copies between the arena and the NPU's scratch those of the
/// model's own tensors, the flash per level in the bundle, bundle.rs and `inspect`.
fn npu_bundle_carries_command_streams(dir: &Path, blob_s: &str, table_s: &str, top: &str) {
    use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
    let out_dir = dir.join("bundle");
    let out_s = out_dir.to_str().expect("utf-8 path");
    let table = edgeslim_search::LatencyTable::load(Path::new(table_s)).expect("table");
    let decoders: Vec<usize> = (1..table.segments.len()).collect();
    let fastest = table
        .predict(&vec![0; table.segments.len()], &decoders)
        .expect("predicts");
    let budgets = format!("{}us,{top}", (fastest * 1.2).ceil());
    let common = [
        "bundle",
        blob_s,
        "--budgets",
        &budgets,
        "--target",
        "ethos-u55-128",
        "--from-table",
        table_s,
        "--data",
        "models/digits-mtl/eval.npz",
        "-o",
        out_s,
    ];
    let err = fails(&[&common[..], &["--npu", "ethos-u99"]].concat());
    assert!(err.contains("ethos-u99"), "{err}");
    let printed = ok(&[&common[..], &["--npu", "ethos-u55-128"]].concat());
    let b = edgeslim_search::Bundle::load(&out_dir.join("bundle.json"), &table.model_hash)
        .expect("a valid bundle for this model");
    let n = b.npu.as_ref().expect("the bundle carries NPU streams");
    assert_eq!(n.config, "ethos-u55-128");
    assert!(b.levels.len() >= 2, "{printed}");
    let blob = std::fs::read(blob_s).expect("blob");
    let m = Model::parse(&blob).expect("model");
    let mut arena = vec![0u8; m.arena_bytes()];
    let x = vec![0.5f32; m.input().bytes()];
    let rust = std::fs::read_to_string(out_dir.join("bundle.rs")).expect("bundle.rs");
    for (l, level) in b.levels.iter().enumerate() {
        // digits-mtl is convolutions and pools only: Vela takes every segment whole, so every
        // segment the level runs has its stream at the level's widths.
        let ix = &n.levels[l];
        let mut running = vec![0usize];
        running.extend((0..m.num_tasks()).map(|t| m.task_segment(t)));
        assert_eq!(ix.len(), running.len(), "level {l}");
        let w = WidthConfig::from_indices(&level.widths).expect("widths");
        let mut interp = Interpreter::new(&m, &mut arena).expect("arena");
        let outs = interp
            .run(Input::F32(&x), &w, TaskMask::all(&m))
            .expect("runs");
        let mut flash = 0u64;
        for &i in ix {
            let s = &n.streams[usize::from(i)];
            assert_eq!(s.width, level.widths[usize::from(s.segment)]);
            assert_eq!(s.encoder_width, level.widths[0]);
            for (file, bytes) in [
                (&s.command_stream, s.command_stream_bytes),
                (&s.weights, s.weight_bytes),
            ] {
                let data = std::fs::read(out_dir.join(file)).expect("stream file");
                assert_eq!(data.len(), bytes as usize, "{file}");
                assert!(
                    rust.contains(&format!("include_bytes!({file:?})")),
                    "{file}"
                );
            }
            // Vela's command streams start with the driver payload header "COP1".
            let cmd = std::fs::read(out_dir.join(&s.command_stream)).expect("cmd");
            assert_eq!(&cmd[..4], b"COP1", "{}", s.command_stream);
            flash += u64::from(s.command_stream_bytes) + u64::from(s.weight_bytes);
            if s.segment == 0 {
                let input = m.input();
                assert_eq!(s.inputs.len(), 1);
                assert_eq!(s.inputs[0].arena as usize, input.offset);
                assert_eq!(s.inputs[0].bytes as usize, input.bytes());
            } else {
                // A decoder writes its task's output: the runtime's tensor at this width.
                let t = (0..m.num_tasks())
                    .find(|&t| m.task_segment(t) == usize::from(s.segment))
                    .expect("the decoder's task");
                let info = m.output(t).expect("output");
                let active = outs.task(t).expect("view").data.len();
                let tensor = m.tensor(info.tensor).expect("tensor");
                assert!(
                    s.outputs
                        .iter()
                        .any(|o| o.arena as usize == tensor.offset && o.bytes as usize == active),
                    "segment {}: {:?} vs {active} bytes at {}",
                    s.segment,
                    s.outputs,
                    tensor.offset
                );
            }
        }
        assert_eq!(n.level_flash_bytes(l), flash);
        assert!(
            printed.contains(&format!("{flash} bytes of flash")),
            "level {l}: {printed}"
        );
    }
    let shown = ok(&[
        "inspect",
        blob_s,
        "--bundle",
        &format!("{out_s}/bundle.json"),
    ]);
    for l in 0..b.levels.len() {
        assert!(
            shown.contains(&format!("{} bytes of NPU flash", n.level_flash_bytes(l))),
            "{shown}"
        );
    }
    assert!(
        shown.contains(&format!("{} bytes of flash in all", n.total_flash_bytes())),
        "{shown}"
    );
}

/// A float32 value of static `shape`.
fn value(name: &str, shape: &[i64]) -> tract_onnx::pb::ValueInfoProto {
    use tract_onnx::pb;
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
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

/// `x [1, 1, 8, 8] -> Conv 3x3 (8) -> Sigmoid -> Conv 3x3 (8) -> y`: the Sigmoid becomes a
/// table op, exported as CAST + ADD + GATHER, which Vela leaves (in part) on the CPU.
fn conv_sigmoid_conv() -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb;
    let conv = |x: &str, w: &str, y: &str| pb::NodeProto {
        op_type: "Conv".into(),
        name: y.into(),
        input: vec![x.into(), w.into()],
        output: vec![y.into()],
        attribute: vec![pb::AttributeProto {
            name: "pads".into(),
            r#type: pb::attribute_proto::AttributeType::Ints as i32,
            ints: vec![1, 1, 1, 1],
            ..Default::default()
        }],
        ..Default::default()
    };
    let weights = |name: &str, cin: usize| pb::TensorProto {
        name: name.into(),
        dims: vec![8, cin as i64, 3, 3],
        data_type: 1,
        float_data: (0..8 * cin * 9)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 20.0)
            .collect(),
        ..Default::default()
    };
    let sigmoid = pb::NodeProto {
        op_type: "Sigmoid".into(),
        name: "s".into(),
        input: vec!["c".into()],
        output: vec!["s".into()],
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
            node: vec![conv("x", "w1", "c"), sigmoid, conv("s", "w2", "y")],
            initializer: vec![weights("w1", 1), weights("w2", 8)],
            input: vec![value("x", &[1, 1, 8, 8])],
            output: vec![value("y", &[1, 8, 8, 8])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn npu_profile_adds_the_cpu_cost_of_ops_vela_leaves_on_the_cpu() {
    use edgeslim_runtime::{Model, OpKind};
    use edgeslim_search::{LatencyTable, OpLatency, SegmentLatency};
    let dir = scratch().join("npu-cpu");
    std::fs::create_dir_all(&dir).expect("dir");
    let onnx = dir.join("m.onnx");
    std::fs::write(&onnx, conv_sigmoid_conv()).expect("write onnx");
    let calib = dir.join("calib.npy");
    let samples: Vec<f32> = (0..16 * 64).map(|i| (i * 13 % 64) as f32 / 64.0).collect();
    edgeslim_compiler::write_f32(
        &calib,
        &edgeslim_compiler::Array::new(vec![16, 1, 8, 8], samples).expect("array"),
    )
    .expect("write calib");
    let blob = dir.join("m.esm");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    ok(&["compile", &s(&onnx), "--calib", &s(&calib), "-o", &s(&blob)]);
    let bytes = std::fs::read(&blob).expect("blob");
    let m = Model::parse(&bytes).expect("model");
    let lut: Vec<usize> = (0..m.num_ops())
        .filter(|&i| m.op(i).expect("op").kind == OpKind::Lut)
        .collect();
    assert_eq!(lut.len(), 1, "the Sigmoid is one table op");
    // Without a CPU table the profile refuses, naming the way out.
    let err = fails(&["profile", &s(&blob), "--target", "ethos-u55-128"]);
    assert!(err.contains("--cpu-table"), "{err}");
    // A per-op CPU table of this model (as `profile --from-log` writes for a Cortex-M55),
    // with a distinct latency per op.
    let hash = format!("esm-crc32:{:08x}:{}", m.body_crc(), bytes.len());
    let seg = m.segment(0).expect("segment");
    let cost = |i: usize| 1.25 * (i + 1) as f64;
    let cpu = LatencyTable {
        format: edgeslim_search::latency::LATENCY_FORMAT.into(),
        model_hash: hash.clone(),
        target: "cortex-m55-test".into(),
        unit: edgeslim_search::latency::LATENCY_UNIT.into(),
        overhead_us: 0.0,
        segments: vec![SegmentLatency {
            name: seg.name.to_string(),
            widths: seg.multipliers().iter().map(|&w| f64::from(w)).collect(),
            latency_us: vec![(0..m.num_ops()).map(cost).sum(); seg.multipliers().len()],
            spread_us: None,
            by_encoder_us: None,
        }],
        encoder_stages: 1,
        configs: Vec::new(),
        conversion: None,
        ops: (0..m.num_ops())
            .map(|i| OpLatency {
                index: i,
                kind: format!("{:?}", m.op(i).expect("op").kind),
                segment: seg.name.to_string(),
                latency_us: vec![cost(i); seg.multipliers().len()],
                by_encoder_us: None,
            })
            .collect(),
    };
    let cpu_path = dir.join("cpu.json");
    cpu.save(&cpu_path).expect("save cpu table");
    let table_path = dir.join("npu.json");
    let out = edgeslim(&[
        "profile",
        &s(&blob),
        "--target",
        "ethos-u55-128",
        "--cpu-table",
        &s(&cpu_path),
        "-o",
        &s(&table_path),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Vela leaves exactly the table op on the CPU; its cost is added once.
    let line = printed
        .lines()
        .find(|l| l.contains("+ CPU"))
        .unwrap_or_else(|| panic!("no CPU cost line: {printed}"));
    assert!(
        line.contains(&format!("(ops {lut:?} on cortex-m55-test)")),
        "{line}"
    );
    let num = |after: &str| -> f64 {
        line.split(after)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{after} in {line}"))
    };
    let (npu_us, cpu_us) = (num("NPU "), num("+ CPU "));
    assert!((cpu_us - cost(lut[0])).abs() < 0.006, "{line}");
    assert!(npu_us > 0.0, "{line}");
    let t = LatencyTable::load(&table_path).expect("table");
    assert!(
        (t.segments[0].latency_us[0] - (npu_us + cpu_us)).abs() < 0.011,
        "{:?} vs {line}",
        t.segments[0].latency_us
    );
    // The CPU table must be for this model.
    let mut other = cpu.clone();
    other.model_hash = "esm-crc32:00000000:1".into();
    other.save(&cpu_path).expect("save");
    let err = fails(&[
        "profile",
        &s(&blob),
        "--target",
        "ethos-u55-128",
        "--cpu-table",
        &s(&cpu_path),
    ]);
    assert!(err.contains("CPU table is for model"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
