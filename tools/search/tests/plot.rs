//! Plots render to SVG and PNG and are not trivially small.
#![cfg(feature = "plot")]

mod common;

use common::{budget, grid_problem, two_task_problem};
use edgeslim_search::*;

fn out_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plot");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn renders_svg_and_png() {
    let p = two_task_problem("digit=3,bold=1");
    let report = p.compare(450.0, ExactMethod::Auto).unwrap();
    let dir = out_dir();
    for name in ["two.svg", "two.png"] {
        let path = dir.join(name);
        plot_report(&path, &p, &report).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > 5_000, "{name}: only {len} bytes");
    }
    let svg = std::fs::read_to_string(dir.join("two.svg")).unwrap();
    for text in [
        "predicted latency",
        "weighted score",
        "Pareto front",
        "budget 450 us",
        "exact",
        "paper mode",
    ] {
        assert!(svg.contains(text), "svg lacks {text:?}");
    }
    assert_eq!(&std::fs::read(dir.join("two.png")).unwrap()[1..4], b"PNG");
    let bad = plot_report(&dir.join("two.gif"), &p, &report).unwrap_err();
    assert!(matches!(bad, Error::Plot { .. }), "{bad}");
}

#[test]
fn large_space_plot_stays_small() {
    // 4 decoders and an encoder of 6 widths: 7776 configurations, one mark per pixel cell.
    let p = grid_problem(7, 4, 6);
    assert_eq!(p.config_count(), 7776);
    let b = budget(&p, 0.5);
    let report = p.compare(b, ExactMethod::Auto).unwrap();
    let path = out_dir().join("large.png");
    plot_report(&path, &p, &report).unwrap();
    let svg = out_dir().join("large.svg");
    plot_report(&svg, &p, &report).unwrap();
    assert!(std::fs::metadata(&svg).unwrap().len() < 8_000_000);
}
