//! Latency and metric tables: JSON round trips, validation errors naming the field, the
//! additive-model check.

mod common;

use common::two_task_problem;
use edgeslim_search::*;

/// A change to a JSON document that breaks one field.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

fn latency_json() -> String {
    two_task_problem("digit=1,bold=1")
        .latency()
        .to_json_string()
        .unwrap()
}

fn invalid_field(err: Error) -> String {
    match err {
        Error::Invalid { field, .. } => field,
        e => panic!("expected Invalid, got {e}"),
    }
}

#[test]
fn latency_round_trip_through_a_file() {
    let p = two_task_problem("digit=1,bold=1");
    let mut table = p.latency().clone();
    table.segments[1].spread_us = Some(vec![1.0, 2.0, 3.0, 4.0]);
    table.configs.push(MeasuredConfig {
        widths: vec![3, 3, 2],
        tasks: vec!["digit".into(), "bold".into()],
        latency_us: 610.0,
    });
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tables");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latency.json");
    table.save(&path).unwrap();
    let back = LatencyTable::load(&path).unwrap();
    assert_eq!(back, table);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("\"edgeslim.latency/1\"")
    );
    let missing = LatencyTable::load(&dir.join("nope.json")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
}

#[test]
fn latency_validation_names_the_field() {
    let base: serde_json::Value = serde_json::from_str(&latency_json()).unwrap();
    let cases: Vec<(&str, Edit)> = vec![
        (
            "format",
            Box::new(|v| v["format"] = "edgeslim.latency/2".into()),
        ),
        ("unit", Box::new(|v| v["unit"] = "ms".into())),
        ("model_hash", Box::new(|v| v["model_hash"] = "".into())),
        (
            "overhead_us",
            Box::new(|v| v["overhead_us"] = (-1.0).into()),
        ),
        (
            "segments[1].latency_us",
            Box::new(|v| v["segments"][1]["latency_us"] = serde_json::json!([1.0])),
        ),
        (
            "segments[2].latency_us[1]",
            Box::new(|v| v["segments"][2]["latency_us"][1] = (-3.0).into()),
        ),
        (
            "segments[0].widths[1]",
            Box::new(|v| v["segments"][0]["widths"][1] = 0.2.into()),
        ),
        (
            "segments[0].widths[3]",
            Box::new(|v| v["segments"][0]["widths"][3] = 1.5.into()),
        ),
        (
            "segments[1].spread_us",
            Box::new(|v| v["segments"][1]["spread_us"] = serde_json::json!([0.0])),
        ),
        (
            "segments[2].name",
            Box::new(|v| v["segments"][2]["name"] = "digit".into()),
        ),
        (
            "segments",
            Box::new(|v| v["segments"] = serde_json::json!([])),
        ),
        (
            "configs[0].widths",
            Box::new(|v| {
                v["configs"] =
                    serde_json::json!([{"widths": [0, 0], "tasks": [], "latency_us": 1.0}])
            }),
        ),
        (
            "configs[0].widths[2]",
            Box::new(|v| {
                v["configs"] =
                    serde_json::json!([{"widths": [0, 0, 3], "tasks": [], "latency_us": 1.0}])
            }),
        ),
        (
            "configs[0].tasks[0]",
            Box::new(|v| {
                v["configs"] = serde_json::json!([{"widths": [0, 0, 0], "tasks": ["italic"], "latency_us": 1.0}])
            }),
        ),
        (
            "configs[0].tasks[0]",
            Box::new(
                |v| v["configs"] = serde_json::json!([{"widths": [0, 0, 0], "tasks": ["encoder"], "latency_us": 1.0}]),
            ),
        ),
        (
            "configs[0].latency_us",
            Box::new(|v| {
                v["configs"] =
                    serde_json::json!([{"widths": [0, 0, 0], "tasks": [], "latency_us": 0.0}])
            }),
        ),
    ];
    for (field, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let err = LatencyTable::from_json_str("t", &v.to_string()).unwrap_err();
        assert_eq!(invalid_field(err), field);
    }
    let json = LatencyTable::from_json_str("table.json", "{\"format\": 1}").unwrap_err();
    assert!(
        matches!(&json, Error::Json { what, .. } if what == "table.json"),
        "{json}"
    );
}

#[test]
fn additive_model_check() {
    let mut table = two_task_problem("digit=1,bold=1").latency().clone();
    assert!(table.check_additive().unwrap().is_none());
    let cfgs = [
        ([3u8, 3, 2], vec!["digit", "bold"]),
        ([0, 0, 0], vec!["digit"]),
        ([1, 0, 1], vec![]),
    ];
    // Measured = predicted * (1 + error): errors 10%, -2%, 4% -> median 4%, worst 10% (index 0).
    for ((w, tasks), err) in cfgs.iter().zip([0.10, -0.02, 0.04]) {
        let names: Vec<String> = tasks.iter().map(|s| s.to_string()).collect();
        let predicted = table.predict_named(w, &names).unwrap();
        table.configs.push(MeasuredConfig {
            widths: w.to_vec(),
            tasks: names,
            latency_us: predicted * (1.0 + err),
        });
    }
    let c = table.check_additive().unwrap().unwrap();
    assert_eq!(c.configs, 3);
    let rel = |e: f64| e.abs() / (1.0 + e);
    assert!((c.median_rel_error - rel(0.04)).abs() < 1e-12, "{c:?}");
    assert!((c.worst_rel_error - rel(0.10)).abs() < 1e-12, "{c:?}");
    assert_eq!(c.worst_index, 0);
    // predict: overhead + encoder + the named decoders.
    let p = table.predict(&[1, 2, 0], &[1]).unwrap();
    assert!((p - (5.0 + 200.0 + 75.0)).abs() < 1e-12);
    assert!(table.predict(&[1, 2], &[1]).is_err());
    assert!(table.predict(&[1, 9, 0], &[1]).is_err());
    assert!(table.predict(&[1, 1, 0], &[0]).is_err());
    assert!(table.predict(&[1, 1, 0], &[7]).is_err());
}

#[test]
fn metric_table_from_points_and_round_trip() {
    let met = two_task_problem("digit=1,bold=1").metrics().clone();
    let text = met.to_json_string().unwrap();
    assert_eq!(MetricTable::from_json_str("m", &text).unwrap(), met);
    let specs = || {
        vec![TaskSpec {
            name: "digit".into(),
            segment: "digit".into(),
            metric: "accuracy".into(),
        }]
    };
    let segs = || met.segments.clone();
    let full = |skip: Option<(usize, usize)>| {
        let mut pts = Vec::new();
        for e in 0..4 {
            for d in 0..4 {
                if Some((e, d)) != skip {
                    pts.push(MetricPoint {
                        encoder: e,
                        decoder: d,
                        task: "digit".into(),
                        value: (e * 4 + d) as f64,
                    });
                }
            }
        }
        pts
    };
    let t = MetricTable::from_points("h", segs(), specs(), full(None)).unwrap();
    assert_eq!(t.tasks[0].values[2][3], 11.0);
    let missing = MetricTable::from_points("h", segs(), specs(), full(Some((1, 2)))).unwrap_err();
    assert!(
        missing.to_string().contains("encoder 1, decoder 2"),
        "{missing}"
    );
    let mut dup = full(None);
    dup.push(dup[0].clone());
    assert!(
        MetricTable::from_points("h", segs(), specs(), dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate")
    );
    let mut oob = full(None);
    oob[0].decoder = 4;
    assert!(MetricTable::from_points("h", segs(), specs(), oob).is_err());
    let mut unknown = full(None);
    unknown[0].task = "italic".into();
    assert!(matches!(
        MetricTable::from_points("h", segs(), specs(), unknown),
        Err(Error::UnknownTask { .. })
    ));
    let enc_task = vec![TaskSpec {
        name: "x".into(),
        segment: "encoder".into(),
        metric: "accuracy".into(),
    }];
    assert!(MetricTable::from_points("h", segs(), enc_task, vec![]).is_err());

    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tasks"][1]["values"][2] = serde_json::json!([0.1]);
    assert_eq!(
        invalid_field(MetricTable::from_json_str("m", &v.to_string()).unwrap_err()),
        "tasks[1].values[2]"
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tasks"][0]["segment"] = "nope".into();
    assert_eq!(
        invalid_field(MetricTable::from_json_str("m", &v.to_string()).unwrap_err()),
        "tasks[0].segment"
    );
}

/// A decoder's per-encoder-width latencies are used by the prediction and validated.
#[test]
fn by_encoder_latencies_predict_and_validate() {
    let mut rng = common::Rng(11);
    let shape = common::Shape {
        decoders: 2,
        max_widths: 4,
        monotone_latency: true,
        shared_lists: true,
        shared_decoder: false,
    };
    let segs = common::segments(&mut rng, shape);
    let mut table = common::latency_table(&mut rng, &segs, true);
    let n_enc = segs[0].widths.len();
    let n_dec = segs[1].widths.len();
    let rows: Vec<Vec<f64>> = (0..n_enc)
        .map(|e| {
            (0..n_dec)
                .map(|d| 1000.0 * (e + 1) as f64 + d as f64)
                .collect()
        })
        .collect();
    table.segments[1].by_encoder_us = Some(rows.clone());
    table.validate().unwrap();
    let mut w = vec![0u8; segs.len()];
    w[0] = (n_enc - 1) as u8;
    w[1] = (n_dec - 1) as u8;
    let expected =
        table.overhead_us + table.segments[0].latency_us[n_enc - 1] + rows[n_enc - 1][n_dec - 1];
    assert_eq!(table.predict(&w, &[1]).unwrap(), expected);

    let mut bad = table.clone();
    bad.segments[1].by_encoder_us = Some(rows[1..].to_vec());
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("segments[1].by_encoder_us"), "{err}");
    let mut bad = table.clone();
    bad.segments[0].by_encoder_us = Some(rows);
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("first encoder stage"), "{err}");
}
