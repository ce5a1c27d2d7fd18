//! The `edgeslim` binary end to end on the bundled default model: the quickstart's main job,
//! then `eval`, `search`, `bundle` and `profile` on its outputs, and their errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgeslim_search::{Bundle, LatencyTable, MetricTable};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("edgeslim-cli-test-{}", std::process::id()))
}

fn edgeslim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(root())
        // Nothing cached from earlier runs: every table is computed here.
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

fn fails(args: &[&str]) -> String {
    let out = edgeslim(args);
    assert!(!out.status.success(), "edgeslim {args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "a clean error, not a panic");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    err
}

/// Float full-width accuracy per task from the trainer's `accuracy.json`.
fn float_full_width(model_dir: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(model_dir.join("accuracy.json")).expect("accuracy.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let rows = v["float"].as_array().expect("float rows");
    let full = rows
        .iter()
        .find(|r| {
            r["widths"]
                .as_object()
                .is_some_and(|w| w.values().all(|m| m.as_f64() == Some(1.0)))
        })
        .expect("a full-width row");
    full["accuracy"]
        .as_object()
        .expect("accuracy map")
        .iter()
        .map(|(k, a)| (k.clone(), a.as_f64().expect("number")))
        .collect()
}

#[test]
fn quickstart_main_job_and_the_commands_on_its_outputs() {
    let tmp = scratch();
    let _ = std::fs::remove_dir_all(&tmp);
    let out = tmp.join("demo");
    let out_s = out.to_str().expect("utf-8 temp path");
    let stdout = ok(&["demo", "--out", out_s]);
    assert!(stdout.contains("chosen (exact search)"), "{stdout}");
    let esm = out.join("model.esm");
    let esm_s = esm.to_str().expect("utf-8");
    assert!(
        out.join("pareto.svg")
            .metadata()
            .expect("plot written")
            .len()
            > 1000
    );

    // The metric table from the runtime reproduces the float model within 1.5 points.
    let metrics = MetricTable::load(&out.join("metrics.json")).expect("metrics.json");
    for (task, float_acc) in float_full_width(&root().join("models/digits-mtl")) {
        let t = metrics.task_index(&task).expect("task in the metric table");
        let int8 = *metrics.tasks[t]
            .values
            .last()
            .and_then(|row| row.last())
            .expect("full-width cell");
        assert!(
            (int8 - float_acc).abs() <= 0.015,
            "{task}: int8 {int8} vs float {float_acc}"
        );
    }
    let latency = LatencyTable::load(&out.join("latency.json")).expect("latency.json");
    assert_eq!(latency.model_hash, metrics.model_hash);
    let lat_s = out.join("latency.json");
    let met_s = out.join("metrics.json");
    let (lat_s, met_s) = (
        lat_s.to_str().expect("utf-8"),
        met_s.to_str().expect("utf-8"),
    );

    // search --json: the chosen configuration meets the budget, exact is never worse than paper.
    let budget_us = 0.6
        * latency
            .predict(&[3, 3, 3], &[1, 2])
            .expect("full-width prediction");
    let budget = format!("{budget_us:.1}us");
    let json = ok(&[
        "search",
        esm_s,
        "--budget",
        &budget,
        "--from-table",
        lat_s,
        "--metrics",
        met_s,
        "--prefer",
        "digit=3,bold=1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("search JSON");
    let exact = &v["search"]["exact"]["chosen"];
    assert!(exact["latency_us"].as_f64().expect("latency") <= budget_us + 0.05);
    if let Some(paper) = v["search"]["paper"]["chosen"]["score"].as_f64() {
        assert!(exact["score"].as_f64().expect("score") >= paper - 1e-12);
    }

    // A budget nothing meets names the fastest configuration's latency.
    let err = fails(&[
        "search",
        esm_s,
        "--budget",
        "1us",
        "--from-table",
        lat_s,
        "--metrics",
        met_s,
    ]);
    assert!(err.contains("fastest"), "{err}");
    // Unknown task names and malformed preferences.
    let search_prefer = |prefer: &str| {
        fails(&[
            "search",
            esm_s,
            "--budget",
            &budget,
            "--from-table",
            lat_s,
            "--metrics",
            met_s,
            "--prefer",
            prefer,
        ])
    };
    let err = search_prefer("nosuch=1");
    assert!(err.contains("nosuch"), "{err}");
    let err = search_prefer("digit=three");
    assert!(err.contains("three"), "{err}");

    // bundle: JSON and Rust, validated against the model's hash.
    let deploy = tmp.join("deploy");
    // The lower level at 0.7x the search budget, but never below the narrowest configuration
    // (with the AVX2 kernels the narrowest is a larger share of full width than before).
    let narrowest = latency
        .predict(&[0, 0, 0], &[1, 2])
        .expect("narrowest prediction");
    let low = (budget_us * 0.7).max(narrowest * 1.05 + 1.0);
    let budgets = format!("{:.0}us,{:.0}us", low, budget_us.max(low + 1.0));
    ok(&[
        "bundle",
        esm_s,
        "--budgets",
        &budgets,
        "--from-table",
        lat_s,
        "--metrics",
        met_s,
        "--prefer",
        "digit=3,bold=1",
        "-o",
        deploy.to_str().expect("utf-8"),
    ]);
    let b = Bundle::load(&deploy.join("bundle.json"), &metrics.model_hash).expect("bundle loads");
    assert_eq!(b.levels.len(), 2);
    assert!(Bundle::load(&deploy.join("bundle.json"), "esm-crc32:00000000:1").is_err());
    let rs = std::fs::read_to_string(deploy.join("bundle.rs")).expect("bundle.rs");
    assert!(
        rs.contains(&metrics.model_hash),
        "the Rust table carries the model hash"
    );

    // Device targets need a measured table; eval data must match the model's input.
    let err = fails(&["profile", esm_s, "--target", "cortex-m7"]);
    assert!(err.contains("--from-table"), "{err}");
    let err = fails(&[
        "eval",
        esm_s,
        "--data",
        "models/mnist-mtl/eval.npz",
        "--no-cache",
    ]);
    assert!(err.contains("shape"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
