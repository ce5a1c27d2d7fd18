//! End to end on a synthetic model: search, compare, Pareto, sweep, plot, bundle.
//!
//! `cargo run -p edgeslim-search --example demo -- <out-dir> [decoders] [widths]`

use std::path::PathBuf;

use edgeslim_search::*;

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "search-demo".into()));
    let decoders: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let widths: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    std::fs::create_dir_all(&out).map_err(|e| Error::Io {
        path: out.clone(),
        source: e,
    })?;

    let base = common::grid_problem(1, decoders, widths);
    let names: Vec<String> = base
        .metrics()
        .tasks
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let prefer: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n}={}", names.len() - i))
        .collect::<Vec<_>>()
        .join(",");
    let prefs = resolve_preferences(base.metrics(), &parse_preferences(&prefer)?)?;
    let problem = base.with_preferences(prefs)?;
    let budget = common::budget(&problem, 0.4).round();
    println!(
        "{} configurations, budget {budget} us, --prefer {prefer}",
        problem.config_count()
    );

    let t = std::time::Instant::now();
    let report = problem.compare(budget, ExactMethod::Auto)?;
    println!("compare took {:?}", t.elapsed());
    let show = |label: &str, c: &Choice| {
        println!(
            "{label:>10}: widths {:?} latency {:.1} us score {:.4} metrics {:?}",
            c.config.indices,
            c.latency_us,
            c.score,
            c.task_metrics
                .iter()
                .map(|m| (m.task.as_str(), (m.value * 1e4).round() / 1e4))
                .collect::<Vec<_>>()
        )
    };
    show("exact", &report.exact.chosen);
    if let Some(r) = &report.exact.runner_up {
        show("runner-up", r);
    }
    if let Some(p) = &report.paper {
        show("paper", &p.chosen);
    }
    println!(
        "score gap {:?}, latency difference {:?} us",
        report.score_gap, report.latency_diff_us
    );
    for f in problem.pareto_fronts()? {
        println!("front {:>8}: {} points", f.objective, f.points.len());
    }

    let t = std::time::Instant::now();
    let sweep = sweep(
        &problem,
        budget,
        &SweepOptions {
            divisions: 10,
            progress: true,
            ..Default::default()
        },
    )?;
    println!(
        "sweep of {} vectors took {:?}",
        sweep.points.len(),
        t.elapsed()
    );
    for c in &sweep.controllability {
        println!("  controllability {}: spearman {:?}", c.task, c.spearman);
    }
    match (&sweep.hypervolume, &sweep.hypervolume_skipped) {
        (Some(h), _) => println!(
            "  hypervolume ratio {:.4} ({:?}, reference {:?})",
            h.ratio, h.method, h.reference
        ),
        (None, Some(why)) => println!("  hypervolume skipped: {why}"),
        _ => {}
    }

    plot_report(&out.join("pareto.svg"), &problem, &report)?;
    plot_report(&out.join("pareto.png"), &problem, &report)?;
    let levels: Vec<u32> = [0.1, 0.3, 0.5, 0.8, 1.0]
        .iter()
        .map(|&f| common::budget(&problem, f).ceil() as u32)
        .collect();
    let bundle = Bundle::build(&problem, &levels, BundleMode::Paper)?;
    bundle.save_json(&out.join("levels.json"))?;
    bundle.save_rust(&out.join("levels.rs"))?;
    println!(
        "wrote pareto.svg, pareto.png, levels.json, levels.rs to {}",
        out.display()
    );
    Ok(())
}
