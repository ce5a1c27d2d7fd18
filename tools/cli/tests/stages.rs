//! An encoder of several stages, each at its own width, with dense tasks, through the `edgeslim`
//! binary: `compile`, `eval` (mIoU and RMSE, recomputed here from `run`'s outputs), `profile`,
//! `search` over every encoder configuration and the `control` report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeslim_compiler::npy;
use edgeslim_search::{LatencyTable, MetricTable};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn data(name: &str) -> PathBuf {
    root().join("tools/compiler/tests/data").join(name)
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeslim-stages-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn edgeslim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(root())
        .env("EDGESLIM_CACHE", scratch().join("cache"))
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

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// mIoU (classes present in labels or predictions) and RMSE, computed here from `run`'s NCHW
/// outputs against the eval set's labels.
fn metrics_of(out_dir: &Path, labels: &BTreeMap<String, npy::NpyData>) -> (f64, f64) {
    let seg = npy::read_f32(&out_dir.join("out_seg.npy")).expect("out_seg.npy");
    let depth = npy::read_f32(&out_dir.join("out_depth.npy")).expect("out_depth.npy");
    let y_seg = labels["y_seg"].clone().into_i64().expect("y_seg");
    let y_depth = labels["y_depth"].clone().into_f32().expect("y_depth");
    let [n, k, h, w] = seg.shape[..] else {
        panic!("out_seg shape {:?}", seg.shape)
    };
    let mut conf = vec![0u64; k * k];
    for i in 0..n {
        for p in 0..h * w {
            let best = (0..k)
                .max_by(|&a, &b| {
                    let va = seg.data[(i * k + a) * h * w + p];
                    let vb = seg.data[(i * k + b) * h * w + p];
                    // First of equal maxima, as an argmax.
                    va.total_cmp(&vb).then(b.cmp(&a))
                })
                .unwrap_or(0);
            let l = y_seg.data[i * h * w + p] as usize;
            conf[l * k + best] += 1;
        }
    }
    let ious: Vec<f64> = (0..k)
        .filter_map(|c| {
            let tp = conf[c * k + c];
            let union = (0..k)
                .map(|j| conf[c * k + j] + conf[j * k + c])
                .sum::<u64>()
                - tp;
            (union > 0).then(|| tp as f64 / union as f64)
        })
        .collect();
    let miou = ious.iter().sum::<f64>() / ious.len() as f64;
    let sq: f64 = depth
        .data
        .iter()
        .zip(&y_depth.data)
        .map(|(p, g)| f64::from(p - g).powi(2))
        .sum();
    (miou, (sq / depth.data.len() as f64).sqrt())
}

#[test]
fn per_stage_widths_compile_eval_profile_and_search() {
    let dir = scratch();
    let esm = dir.join("staged.esm");
    ok(&[
        "compile",
        s(&data("tiny_staged.onnx")),
        "--calib",
        s(&data("calib.npy")),
        "-o",
        s(&esm),
    ]);

    // eval: one row per encoder configuration (2 x 2 x 3), the metric from the labels.
    let met_path = dir.join("metrics.json");
    let eval_set = data("tiny_staged_eval.npz");
    let text = ok(&["eval", s(&esm), "--data", s(&eval_set), "-o", s(&met_path)]);
    assert!(text.contains("seg (miou, higher is better)"), "{text}");
    assert!(text.contains("depth (rmse, lower is better)"), "{text}");
    let met = MetricTable::load(&met_path).expect("metric table");
    assert_eq!(met.encoder_stages, 3);
    assert_eq!(met.encoder_configs(), 12);
    assert_eq!(met.tasks[0].metric, "miou");
    assert_eq!(met.tasks[1].metric, "rmse");
    assert!(met.lower_is_better(1) && !met.lower_is_better(0));

    // The table's values are the metrics of `run`'s outputs, recomputed here, at two
    // configurations: every segment at full width (the labels are the float model's own
    // outputs, so int8 comes close), and mixed stage widths.
    let labels = npy::read_npz(&eval_set).expect("eval set");
    let x = labels["x"].clone().into_f32().expect("x");
    let x_path = dir.join("x.npy");
    npy::write_f32(&x_path, &x).expect("write x");
    for (spec, e, d_seg, d_depth) in [
        ("", 11usize, 1usize, 1usize),
        ("s0=0.5,s2=0.25,seg=0.5,depth=0.5", 2, 0, 0),
    ] {
        let out = dir.join(format!("run-{e}"));
        ok(&[
            "run",
            s(&esm),
            "--input",
            s(&x_path),
            "--output-dir",
            s(&out),
            "--width",
            spec,
        ]);
        let (miou, rmse) = metrics_of(&out, &labels);
        let (t_miou, t_rmse) = (
            met.tasks[0].values[e][d_seg],
            met.tasks[1].values[e][d_depth],
        );
        assert!(
            (miou - t_miou).abs() < 1e-9,
            "{spec:?}: mIoU {miou} vs table {t_miou}"
        );
        assert!(
            (rmse - t_rmse).abs() <= 1e-5 * rmse.max(1e-3),
            "{spec:?}: RMSE {rmse} vs table {t_rmse}"
        );
        if e == 11 {
            assert!(
                miou >= 0.9 && rmse < 0.01,
                "full width: mIoU {miou}, RMSE {rmse}"
            );
        }
    }

    // profile: stages 1 and 2 depend on the stage before, decoders on the last stage.
    let lat_path = dir.join("latency.json");
    ok(&[
        "profile",
        s(&esm),
        "--reps",
        "3",
        "--configs",
        "24",
        "-o",
        s(&lat_path),
    ]);
    let lat = LatencyTable::load(&lat_path).expect("latency table");
    assert_eq!(lat.encoder_stages, 3);
    assert!(lat.segments[0].by_encoder_us.is_none());
    for (seg, rows) in [(1, 2), (2, 2), (3, 3), (4, 3)] {
        let r = lat.segments[seg].by_encoder_us.as_ref().expect("rows");
        assert_eq!(r.len(), rows, "segment {seg}");
    }

    // A Cortex-M4 log of the same model in QEMU (`tests/data/profile-qemu-m4-tiny-staged.log`,
    // recorded by `edgeslim profile --target cortex-m4-qemu` on 2026-12-03; its model_hash set
    // to the blob compiled here): stage k's row a, column d is the ticks of segment k in the
    // first all-task run with stage k-1 at width a and stage k at width d, read from the log's
    // own lines here.
    let hash = {
        let b = std::fs::read(&esm).expect("blob");
        let m = edgeslim_runtime::Model::parse(&b).expect("parses");
        format!("esm-crc32:{:08x}:{}", m.body_crc(), b.len())
    };
    let log: String = include_str!("data/profile-qemu-m4-tiny-staged.log")
        .lines()
        .map(|l| {
            if l.contains("model_hash ") {
                format!("INFO  model_hash {hash}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let log_path = dir.join("m4.log");
    std::fs::write(&log_path, &log).expect("log");
    let m4_path = dir.join("m4.json");
    ok(&[
        "profile",
        s(&esm),
        "--from-log",
        s(&log_path),
        "--target",
        "cortex-m4",
        "-o",
        s(&m4_path),
    ]);
    let m4 = LatencyTable::load(&m4_path).expect("m4 table");
    assert_eq!(m4.encoder_stages, 3);
    let per_tick = m4.conversion.as_ref().expect("conversion").us_per_tick;
    // (widths, segment ticks) of the all-task runs, in log order.
    let runs: Vec<(Vec<u64>, Vec<u64>)> = log
        .lines()
        .filter_map(|l| l.split_once("run widths ").map(|(_, r)| r))
        .filter(|r| r.contains("mask 3 "))
        .map(|r| {
            let nums = |text: &str| -> Vec<u64> {
                text.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|v| v.trim().parse().ok())
                    .collect()
            };
            let widths = nums(r);
            let segs = nums(r.split(" segments ").nth(1).unwrap_or(""));
            (widths, segs)
        })
        .collect();
    assert!(runs.len() >= 12, "{} all-task runs", runs.len());
    for k in 1..3usize {
        let rows = m4.segments[k].by_encoder_us.as_ref().expect("rows");
        for (a, row) in rows.iter().enumerate() {
            for (d, &v) in row.iter().enumerate() {
                let (_, segs) = runs
                    .iter()
                    .find(|(w, _)| w[k - 1] == a as u64 && w[k] == d as u64)
                    .expect("a run with those widths");
                assert!(
                    (v - segs[k] as f64 * per_tick).abs() < 1e-6,
                    "stage {k} at ({a}, {d}): {v} us"
                );
            }
        }
    }

    // search: a configuration of five widths within the budget.
    let text = ok(&[
        "search",
        s(&esm),
        "--target",
        "host",
        "--from-table",
        s(&lat_path),
        "--metrics",
        s(&met_path),
        "--budget",
        "100ms",
        "--prefer",
        "seg=1,depth=3",
    ]);
    let exact = text
        .lines()
        .find(|l| l.trim_start().starts_with("exact:"))
        .unwrap_or_else(|| panic!("{text}"));
    let widths = exact
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or_else(|| panic!("{exact}"));
    assert_eq!(widths.split(',').count(), 5, "{exact}");
    // At a budget every configuration meets, both tasks at their best: full width.
    assert!(exact.contains("1.00, 1.00, 1.00, 1.00, 1.00"), "{exact}");
    assert!(
        exact.contains("depth 0.0"),
        "RMSE shown as a value: {exact}"
    );

    // control: widths chosen on the validation set, reported on the test set.
    let json = dir.join("control.json");
    let plot = dir.join("control.svg");
    let md = ok(&[
        "control",
        s(&esm),
        "--val",
        s(&data("tiny_staged_val.npz")),
        "--test",
        s(&eval_set),
        "--from-table",
        s(&lat_path),
        "--budgets",
        "1.0,100ms",
        "--divisions",
        "6",
        "--bootstrap",
        "50",
        "--limit",
        "30",
        "--json",
        s(&json),
        "--plot",
        s(&plot),
    ]);
    assert!(md.contains("| budget | method |"), "{md}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    // The first 30 samples of each set (`--limit`).
    assert_eq!(r["samples"], serde_json::json!([30, 30]));
    assert_eq!(r["preferences"], 7);
    let budgets = r["budgets"].as_array().expect("budgets");
    assert_eq!(budgets.len(), 2);
    for b in budgets {
        let methods = b["methods"].as_array().expect("methods");
        let names: Vec<&str> = methods
            .iter()
            .filter_map(|m| m["method"].as_str())
            .collect();
        assert_eq!(names, ["paper", "exact", "uniform", "static"]);
        for m in methods {
            // Every preference vector answered within the full-width budget, none over it.
            assert_eq!(m["answered"], 7, "{m}");
            assert_eq!(m["violations_predicted"], 0, "{m}");
            let hv = m["hypervolume_ratio"].as_f64().expect("hv");
            assert!((0.0..=1.0 + 1e-9).contains(&hv), "{m}");
        }
        // The baselines ignore preferences: no correlation is defined for them.
        assert!(methods[2]["spearman"]["seg"]["value"].is_null());
        assert!(methods[3]["spearman"]["depth"]["value"].is_null());
        // Paper mode gives the preferred task's decoder the width: depth's RMSE falls (its
        // negation rises) as its preference grows, and the interval holds the estimate.
        let d = &methods[0]["spearman"]["depth"];
        let (v, lo, hi) = (
            d["value"].as_f64().expect("defined"),
            d["lo"].as_f64().expect("lo"),
            d["hi"].as_f64().expect("hi"),
        );
        assert!(v > 0.0 && lo <= v + 1e-9 && v <= hi + 1e-9, "{d}");
    }
    let svg = std::fs::read_to_string(&plot).expect("plot");
    assert!(
        svg.starts_with("<svg") && svg.contains("test Pareto front"),
        "plot"
    );
}
