//! Deployment bundles: JSON round trip, hash check, validation, the generated Rust table.

mod common;

use common::two_task_problem;
use edgeslim_search::*;

/// A change to a JSON document that breaks one field.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

const BUDGETS: [u32; 4] = [700, 300, 450, 250];

fn bundle() -> Bundle {
    Bundle::build(
        &two_task_problem("digit=3,bold=1"),
        &BUDGETS,
        BundleMode::Paper,
    )
    .unwrap()
}

#[test]
fn json_round_trip_and_hash_check() {
    let b = bundle();
    assert_eq!(
        b.levels.iter().map(|l| l.budget_us).collect::<Vec<_>>(),
        vec![250, 300, 450, 700]
    );
    let p = two_task_problem("digit=3,bold=1");
    for l in &b.levels {
        let expected = p.paper(f64::from(l.budget_us)).unwrap().chosen;
        assert_eq!(l.widths, expected.config.indices);
        assert_eq!(l.predicted_latency_us, expected.latency_us);
        assert_eq!(l.task_mask, 0b11);
    }
    let text = b.to_json_string().unwrap();
    assert!(text.contains("\"edgeslim.bundle/1\""));
    assert_eq!(Bundle::from_json_str("b", &text, "h-two").unwrap(), b);
    match Bundle::from_json_str("b", &text, "h-other") {
        Err(Error::HashMismatch { expected, found }) => {
            assert_eq!(expected, "h-other");
            assert_eq!(found, "h-two");
        }
        other => panic!("{other:?}"),
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle");
    std::fs::create_dir_all(&dir).unwrap();
    b.save_json(&dir.join("levels.json")).unwrap();
    assert_eq!(Bundle::load(&dir.join("levels.json"), "h-two").unwrap(), b);
    assert!(matches!(
        Bundle::load(&dir.join("levels.json"), "x"),
        Err(Error::HashMismatch { .. })
    ));
}

#[test]
fn validation_rejects_broken_bundles() {
    let text = bundle().to_json_string().unwrap();
    let base: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(&str, Edit)> = vec![
        (
            "format",
            Box::new(|v| v["format"] = "edgeslim.bundle/0".into()),
        ),
        (
            "levels[1].budget_us",
            Box::new(|v| v["levels"][1]["budget_us"] = 250.into()),
        ),
        (
            "levels[0].widths",
            Box::new(|v| v["levels"][0]["widths"] = serde_json::json!([0, 0])),
        ),
        (
            "levels[0].widths[2]",
            Box::new(|v| v["levels"][0]["widths"][2] = 3.into()),
        ),
        (
            "levels[0].multipliers[1]",
            Box::new(|v| v["levels"][0]["multipliers"][1] = 0.3.into()),
        ),
        (
            "levels[0].task_mask",
            Box::new(|v| v["levels"][0]["task_mask"] = 4.into()),
        ),
        (
            "levels[0].task_mask",
            Box::new(|v| v["levels"][0]["task_mask"] = 0.into()),
        ),
        (
            "levels[0].predicted_latency_us",
            Box::new(|v| v["levels"][0]["predicted_latency_us"] = 251.0.into()),
        ),
        ("levels", Box::new(|v| v["levels"] = serde_json::json!([]))),
        (
            "preferences[0].task",
            Box::new(|v| v["preferences"][0]["task"] = "italic".into()),
        ),
        ("tasks[1]", Box::new(|v| v["tasks"][1] = "digit".into())),
    ];
    for (field, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        match Bundle::from_json_str("b", &v.to_string(), "h-two") {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let p = two_task_problem("digit=3,bold=1");
    assert!(Bundle::build(&p, &[300, 300], BundleMode::Exact).is_err());
    assert!(Bundle::build(&p, &[], BundleMode::Exact).is_err());
    assert!(matches!(
        Bundle::build(&p, &[10, 300], BundleMode::Exact),
        Err(Error::BudgetInfeasible { .. })
    ));
}

// The committed fixture is the generated source for `bundle()`; it must compile as items.
mod levels {
    include!("fixtures/levels.rs");
}

#[test]
fn rust_source_matches_fixture_and_compiles() {
    let b = bundle();
    let src = b.to_rust_source();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/levels.rs");
    if std::env::var_os("EDGESLIM_BLESS").is_some() {
        std::fs::write(fixture, &src).unwrap();
    }
    assert_eq!(
        src,
        std::fs::read_to_string(fixture).unwrap(),
        "rerun with EDGESLIM_BLESS=1 after a deliberate change"
    );
    assert_eq!(levels::MODEL_HASH, b.model_hash);
    assert_eq!(levels::SEGMENTS, b.segments.len());
    assert_eq!(levels::LEVELS.len(), b.levels.len());
    for (row, l) in levels::LEVELS.iter().zip(&b.levels) {
        assert_eq!(row.0, l.budget_us);
        assert_eq!(row.1.to_vec(), l.widths);
        assert_eq!(row.2, l.task_mask);
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle");
    std::fs::create_dir_all(&dir).unwrap();
    b.save_rust(&dir.join("levels.rs")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("levels.rs")).unwrap(), src);
}

/// `bundle()` with one synthetic stream per running segment of each level (what `edgeslim
/// bundle --npu` attaches from Vela's output).
fn npu_bundle() -> Bundle {
    let mut b = bundle();
    let mut streams: Vec<NpuStream> = Vec::new();
    let mut levels = Vec::new();
    for l in &b.levels {
        let mut ix = Vec::new();
        for s in 0..b.segments.len() {
            let (e, w) = (l.widths[0], l.widths[s]);
            let i = match streams
                .iter()
                .position(|x| (x.segment, x.encoder_width, x.width) == (s as u8, e, w))
            {
                Some(i) => i,
                None => {
                    streams.push(NpuStream {
                        segment: s as u8,
                        encoder_width: e,
                        width: w,
                        command_stream: format!("npu/s{s}-e{e}-w{w}.cmd"),
                        command_stream_bytes: 64 + 16 * u32::from(w),
                        weights: format!("npu/s{s}-e{e}-w{w}.weights"),
                        weight_bytes: 1000 * (u32::from(w) + 1),
                        weight_region: 0,
                        scratch_region: 1,
                        fast_scratch_region: 2,
                        scratch_bytes: 4096 + 16 * s as u32,
                        fast_scratch_bytes: 0,
                        inputs: vec![NpuTransfer {
                            region: 1,
                            offset: 0,
                            arena: 0,
                            bytes: 784,
                        }],
                        outputs: vec![NpuTransfer {
                            region: 1,
                            offset: 1024,
                            arena: 2048,
                            bytes: 10,
                        }],
                    });
                    streams.len() - 1
                }
            };
            ix.push(i as u16);
        }
        levels.push(ix);
    }
    b.npu = Some(NpuStreams {
        config: "ethos-u55-128".into(),
        vela: "5.2.0".into(),
        streams,
        levels,
    });
    b
}

#[test]
fn npu_streams_round_trip_flash_and_rust_items() {
    let b = npu_bundle();
    b.validate().unwrap();
    let n = b.npu.as_ref().unwrap();
    assert!(!n.streams.is_empty());
    // Flash per level is the sum of its own streams, each counted once in the total.
    for (l, ix) in n.levels.iter().enumerate() {
        let sum: u64 = ix
            .iter()
            .map(|&i| {
                let s = &n.streams[usize::from(i)];
                u64::from(s.command_stream_bytes) + u64::from(s.weight_bytes)
            })
            .sum();
        assert_eq!(n.level_flash_bytes(l), sum);
        assert!(n.level_flash_bytes(l) <= n.total_flash_bytes());
    }
    assert_eq!(
        n.scratch_bytes().0,
        4096 + 16 * (b.segments.len() as u32 - 1)
    );
    let text = b.to_json_string().unwrap();
    assert_eq!(Bundle::from_json_str("b", &text, "h-two").unwrap(), b);
    // A bundle without streams keeps its JSON free of the field.
    assert!(!bundle().to_json_string().unwrap().contains("\"npu\""));
    let src = b.to_rust_source();
    assert!(src.contains("pub const NPU_CONFIG: &str = \"ethos-u55-128\";\n"));
    assert!(src.contains(&format!(
        "pub static NPU_STREAMS: [edgeslim_ethos_u::Stream; {}] = [",
        n.streams.len()
    )));
    for (i, s) in n.streams.iter().enumerate() {
        assert!(src.contains(&format!(
            "static NPU_CMD_{i}: edgeslim_ethos_u::Aligned<[u8; {}]> = \
             edgeslim_ethos_u::Aligned(*include_bytes!({:?}));",
            s.command_stream_bytes, s.command_stream
        )));
    }
    let flash: Vec<String> = (0..n.levels.len())
        .map(|l| n.level_flash_bytes(l).to_string())
        .collect();
    assert!(src.contains(&format!(
        "pub const LEVEL_NPU_FLASH: [u32; {}] = [{}];",
        n.levels.len(),
        flash.join(", ")
    )));
}

#[test]
fn npu_validation_names_the_field() {
    let base: serde_json::Value =
        serde_json::from_str(&npu_bundle().to_json_string().unwrap()).unwrap();
    let cases: Vec<(&str, Edit)> = vec![
        ("npu.config", Box::new(|v| v["npu"]["config"] = "".into())),
        (
            "npu.streams[0].segment",
            Box::new(|v| v["npu"]["streams"][0]["segment"] = 9.into()),
        ),
        (
            "npu.streams[0].width",
            Box::new(|v| v["npu"]["streams"][0]["width"] = 7.into()),
        ),
        (
            "npu.streams[0].command_stream",
            Box::new(|v| v["npu"]["streams"][0]["command_stream"] = "../x.cmd".into()),
        ),
        (
            "npu.streams[0].command_stream_bytes",
            Box::new(|v| v["npu"]["streams"][0]["command_stream_bytes"] = 0.into()),
        ),
        (
            "npu.streams[0].scratch_region",
            Box::new(|v| v["npu"]["streams"][0]["scratch_region"] = 8.into()),
        ),
        (
            "npu.streams[0].inputs[0]",
            Box::new(|v| v["npu"]["streams"][0]["inputs"][0]["offset"] = 4000.into()),
        ),
        (
            "npu.streams[0].outputs[0].region",
            Box::new(|v| v["npu"]["streams"][0]["outputs"][0]["region"] = 5.into()),
        ),
        (
            "npu.streams[0].outputs",
            Box::new(|v| v["npu"]["streams"][0]["outputs"] = serde_json::json!([])),
        ),
        (
            "npu.levels",
            Box::new(|v| v["npu"]["levels"] = serde_json::json!([[0]])),
        ),
        (
            "npu.levels[0][0]",
            Box::new(|v| v["npu"]["levels"][0][0] = 999.into()),
        ),
        (
            "npu.levels[0][1]",
            Box::new(|v| {
                let first = v["npu"]["levels"][0][0].clone();
                v["npu"]["levels"][0][1] = first;
            }),
        ),
    ];
    for (field, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        match Bundle::from_json_str("b", &v.to_string(), "h-two") {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
