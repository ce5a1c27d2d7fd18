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
