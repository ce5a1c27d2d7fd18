//! `edgeslim control`: how well task preferences and budgets control a model, reported the way
//! a paper's table would report it.
//!
//! Widths are **chosen on the validation set** and **reported on the test set**:
//! 1. The metric tables of both sets (`edgeslim eval`, exact: every encoder configuration and
//!    decoder width) and the latency table (measured on this host, or `--from-table`).
//! 2. For every budget and every preference vector of a simplex grid, the search picks a
//!    configuration on the validation table: paper mode and exact mode. Beside them, two
//!    baselines that ignore preferences: **uniform** (every segment at one multiplier, the
//!    widest that fits) and **static** (one configuration per budget: the exact choice for
//!    equal preferences).
//! 3. Each chosen configuration is scored on the test set. Per task and method: the Spearman
//!    correlation between the task's preference and its test metric (negated where lower is
//!    better), with a bootstrap 95% interval (the test samples resampled with replacement,
//!    every configuration's metrics recomputed from per-sample statistics); the hypervolume of
//!    the chosen configurations relative to the exhaustive Pareto front of the test table in
//!    `(latency, task metrics)` under the budget; and budget violations: predicted by the table
//!    and, with `--measure`, measured on this host (median of repeated runs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use edgeslim_search::config::lower_is_better;
use edgeslim_search::sweep::{SplitMix, hypervolume, nondominated, simplex_grid, spearman};
use edgeslim_search::{Choice, ExactMethod, LatencyTable, Panel, Problem, Series, plot_panels};
use serde::Serialize;

use crate::choose::{default_cache, latency_table, load_blob, model_hash, parse};
use crate::evaluate::{EvalSet, evaluate_cached, kinds, load_eval_set, sample_stats, scores_of};

/// `edgeslim control` arguments.
#[derive(clap::Args)]
pub struct ControlArgs {
    /// The model blob.
    pub model: PathBuf,
    /// Validation set (`x`, `y_<task>`): configurations are chosen on it.
    #[arg(long)]
    pub val: PathBuf,
    /// Test set: the chosen configurations are reported on it.
    #[arg(long)]
    pub test: PathBuf,
    /// Latency table measured elsewhere (default: measured on this host, cached).
    #[arg(long)]
    pub from_table: Option<PathBuf>,
    /// Budgets: fractions of the full-width configuration's predicted latency (`0.5`) or
    /// absolute (`350us`, `2ms`), comma-separated.
    #[arg(long, default_value = "0.4,0.6,0.8,1.0")]
    pub budgets: String,
    /// Divisions of the preference simplex grid (`divisions + 1` vectors for two tasks).
    #[arg(long, default_value_t = 10)]
    pub divisions: u32,
    /// Bootstrap resamples of the test set for the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Use only the first N samples of each set (the metric tables evaluate every encoder
    /// configuration at every decoder width: this bounds the time).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also time every chosen configuration on this host and count measured violations.
    #[arg(long)]
    pub measure: bool,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report's table as Markdown (for a model's README).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Plot test metric against preference per task, and the test Pareto fronts with the
    /// chosen configurations, per budget (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// A statistic with its bootstrap 95% interval.
#[derive(Debug, Clone, Serialize)]
pub struct WithCi {
    /// On the whole test set (`None` when undefined: a constant side).
    pub value: Option<f64>,
    /// 2.5th percentile over the resamples where it is defined.
    pub lo: Option<f64>,
    /// 97.5th percentile.
    pub hi: Option<f64>,
}

/// One method at one budget.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    /// `paper`, `exact`, `uniform` or `static`.
    pub method: String,
    /// Preference vectors the method answered (the others had no configuration in budget).
    pub answered: usize,
    /// Per task: Spearman(preference, test metric, negated where lower is better).
    pub spearman: BTreeMap<String, WithCi>,
    /// Hypervolume of the chosen configurations over the exhaustive test front's.
    pub hypervolume_ratio: f64,
    /// Chosen configurations whose predicted latency exceeds the budget.
    pub violations_predicted: usize,
    /// Chosen configurations whose measured median exceeds the budget (`--measure`).
    pub violations_measured: Option<usize>,
    /// Mean test metric per task over the preference vectors.
    pub mean_metric: BTreeMap<String, f64>,
}

/// One budget.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetReport {
    /// Budget, microseconds.
    pub budget_us: f64,
    /// Budget as a fraction of the full-width configuration's predicted latency.
    pub fraction_of_full: f64,
    /// The methods.
    pub methods: Vec<MethodReport>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ControlReport {
    /// Model hash.
    pub model_hash: String,
    /// Latency table target.
    pub target: String,
    /// Validation and test samples.
    pub samples: (usize, usize),
    /// Preference vectors per budget.
    pub preferences: usize,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// Tasks and their metrics.
    pub tasks: Vec<(String, String)>,
    /// Per budget.
    pub budgets: Vec<BudgetReport>,
}

/// The budgets of `spec` in microseconds, with their fraction of `full_us`.
fn budgets(spec: &str, full_us: f64) -> Result<Vec<(f64, f64)>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let us = match s.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => f * full_us,
                _ => edgeslim_search::parse_budget_us(s)?,
            };
            Ok((us, us / full_us))
        })
        .collect()
}

/// Every configuration of the running space as one width index per segment.
fn all_configs(lat: &LatencyTable) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for seg in &lat.segments {
        out = out
            .into_iter()
            .flat_map(|c| {
                (0..seg.widths.len()).map(move |i| {
                    let mut c = c.clone();
                    c.push(i as u8);
                    c
                })
            })
            .collect();
    }
    out
}

/// The uniform baseline at `budget`: every segment at its widest multiplier `<= m`, for the
/// largest `m` (over every segment's list) whose configuration fits.
fn uniform(p: &Problem, budget: f64) -> Option<Choice> {
    let lat = p.latency();
    let mut ms: Vec<f64> = lat
        .segments
        .iter()
        .flat_map(|s| s.widths.iter().copied())
        .collect();
    ms.sort_by(|a, b| b.total_cmp(a));
    ms.dedup();
    for m in ms {
        let idx: Vec<u8> = lat
            .segments
            .iter()
            .map(|s| s.widths.iter().rposition(|&w| w <= m + 1e-9).unwrap_or(0) as u8)
            .collect();
        if let Ok(c) = p.evaluate(&idx)
            && c.latency_us <= budget
        {
            return Some(c);
        }
    }
    None
}

/// Median on-CPU-agnostic wall time of `reps` runs of `model` at `widths`, microseconds.
fn measure(model: &Model<'_>, set: &EvalSet, widths: &WidthConfig, reps: usize) -> Result<f64> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(model, &mut arena)?;
    let x = &set.x[..set.sample_len];
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        interp.run(Input::F32(x), widths, TaskMask::all(model))?;
        t.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// The `q`-quantile of `v` (sorted here), `None` when empty.
fn percentile(v: &mut [f64], q: f64) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| crate::bench::stats::quantile(v, q))
}

/// `edgeslim control`.
pub fn control(a: ControlArgs) -> Result<()> {
    let blob = load_blob(&a.model)?;
    let m = parse(&blob)?;
    let hash = model_hash(&m, &blob);
    let lat = latency_table(&m, &hash, "host", a.from_table.as_deref(), 31)?;
    let mut val = load_eval_set(&a.val, &m)?;
    let mut test = load_eval_set(&a.test, &m)?;
    if let Some(n) = a.limit {
        val.truncate(n);
        test.truncate(n);
    }
    eprintln!("metric tables of the validation and test sets (every encoder configuration)");
    let (val_met, _) = evaluate_cached(&m, &hash, &val, Some(&default_cache()), true)?;
    let (test_met, _) = evaluate_cached(&m, &hash, &test, Some(&default_cache()), true)?;
    let n_tasks = val_met.tasks.len();
    if n_tasks < 2 {
        bail!("control needs at least two tasks, the model has {n_tasks}");
    }
    let task_names: Vec<String> = val_met.tasks.iter().map(|t| t.name.clone()).collect();
    let metric_names: Vec<String> = val_met.tasks.iter().map(|t| t.metric.clone()).collect();
    let signs: Vec<f64> = metric_names
        .iter()
        .map(|k| if lower_is_better(k) { -1.0 } else { 1.0 })
        .collect();
    let equal = vec![1.0; n_tasks];
    let all_tasks = edgeslim_search::TaskMask::all(n_tasks);
    let p_val = Problem::new(lat.clone(), val_met.clone(), equal.clone(), all_tasks)?;
    let p_test = Problem::new(lat.clone(), test_met.clone(), equal.clone(), all_tasks)?;
    let full: Vec<u8> = WidthConfig::full(&m).as_slice().to_vec();
    let full_us = p_val.evaluate(&full)?.latency_us;
    let grid = simplex_grid(n_tasks, a.divisions);
    let kinds = kinds(&m, &test);
    // Per-sample test statistics of every configuration chosen, computed once each.
    let mut stats: BTreeMap<Vec<u8>, Vec<Vec<Vec<f64>>>> = BTreeMap::new();
    let mut measured: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The exhaustive space, scored on the test table.
    let space: Vec<Choice> = all_configs(&lat)
        .iter()
        .map(|c| p_test.evaluate(c))
        .collect::<edgeslim_search::Result<_>>()?;
    let point = |c: &Choice| -> Vec<f64> {
        let mut v = vec![c.latency_us];
        v.extend(c.task_metrics.iter().zip(&signs).map(|(t, s)| -s * t.value));
        v
    };
    // Reference: the budget, and each task's worst test value over its whole table.
    let worst: Vec<f64> = (0..n_tasks)
        .map(|t| {
            space
                .iter()
                .map(|c| -signs[t] * c.task_metrics[t].value)
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    let mut report = ControlReport {
        model_hash: hash.clone(),
        target: lat.target.clone(),
        samples: (val.n, test.n),
        preferences: grid.len(),
        bootstrap: a.bootstrap,
        tasks: task_names
            .iter()
            .cloned()
            .zip(metric_names.iter().cloned())
            .collect(),
        budgets: Vec::new(),
    };
    let mut panels_pref: Vec<Vec<Series>> = vec![Vec::new(); n_tasks];
    let mut panels_front: Vec<Vec<Series>> = vec![Vec::new(); n_tasks];
    let budgets = budgets(&a.budgets, full_us)?;
    let bar = indicatif::ProgressBar::new((budgets.len() * 4) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("control {bar:30} {pos}/{len} (budget, method)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for &(budget, frac) in &budgets {
        let mut methods = Vec::new();
        let fixed_static = p_val
            .exact(budget, ExactMethod::Auto)
            .ok()
            .map(|r| r.chosen);
        let fixed_uniform = uniform(&p_val, budget);
        for method in ["paper", "exact", "uniform", "static"] {
            // (preference vector, chosen configuration) on the validation table.
            let mut chosen: Vec<(Vec<f64>, Vec<u8>)> = Vec::new();
            for prefs in &grid {
                let p = p_val.with_preferences(prefs.clone())?;
                let c = match method {
                    "paper" => p.paper(budget).ok().map(|r| r.chosen),
                    "exact" => p.exact(budget, ExactMethod::Auto).ok().map(|r| r.chosen),
                    "uniform" => fixed_uniform.clone(),
                    _ => fixed_static.clone(),
                };
                if let Some(c) = c {
                    chosen.push((prefs.clone(), c.config.indices));
                }
            }
            for (_, idx) in &chosen {
                if !stats.contains_key(idx) {
                    let w = WidthConfig::from_indices(idx)?;
                    stats.insert(idx.clone(), sample_stats(&m, &test, &w, threads)?);
                }
                if a.measure && !measured.contains_key(idx) {
                    let w = WidthConfig::from_indices(idx)?;
                    measured.insert(idx.clone(), measure(&m, &test, &w, 31)?);
                }
            }
            // Test metrics of each answer, on the whole set and per resample.
            let metric_at = |idx: &[u8], sample: Option<&[usize]>, t: usize| -> f64 {
                stats
                    .get(idx)
                    .map(|s| scores_of(&kinds, s, sample)[t].value)
                    .unwrap_or(f64::NAN)
            };
            let mut rng = SplitMix(0x5EED ^ budget.to_bits());
            let resamples: Vec<Vec<usize>> = (0..a.bootstrap)
                .map(|_| (0..test.n).map(|_| rng.below(test.n)).collect())
                .collect();
            let mut spearmans = BTreeMap::new();
            let mut means = BTreeMap::new();
            for t in 0..n_tasks {
                let x: Vec<f64> = chosen.iter().map(|(p, _)| p[t]).collect();
                let y: Vec<f64> = chosen
                    .iter()
                    .map(|(_, c)| signs[t] * metric_at(c, None, t))
                    .collect();
                let mut boot: Vec<f64> = resamples
                    .iter()
                    .filter_map(|r| {
                        let y: Vec<f64> = chosen
                            .iter()
                            .map(|(_, c)| signs[t] * metric_at(c, Some(r), t))
                            .collect();
                        spearman(&x, &y)
                    })
                    .collect();
                let value = spearman(&x, &y);
                spearmans.insert(
                    task_names[t].clone(),
                    WithCi {
                        value,
                        lo: percentile(&mut boot, 0.025),
                        hi: percentile(&mut boot, 0.975),
                    },
                );
                means.insert(
                    task_names[t].clone(),
                    signs[t] * y.iter().sum::<f64>() / y.len().max(1) as f64,
                );
                if method == "paper" {
                    let mut pts: Vec<(f64, f64)> =
                        x.iter().zip(&y).map(|(&p, &v)| (p, signs[t] * v)).collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    panels_pref[t].push(Series {
                        label: format!("{:.0}% of full", 100.0 * frac),
                        points: pts,
                        line: true,
                    });
                }
            }
            // Hypervolume on the test table, under the budget.
            let chosen_pts: Vec<Vec<f64>> = chosen
                .iter()
                .filter_map(|(_, c)| p_test.evaluate(c).ok())
                .filter(|c| c.latency_us <= budget)
                .map(|c| point(&c))
                .collect();
            let front: Vec<Vec<f64>> = nondominated(
                &space
                    .iter()
                    .filter(|c| c.latency_us <= budget)
                    .map(point)
                    .collect::<Vec<_>>(),
            );
            let mut reference = vec![budget];
            reference.extend(worst.iter().copied());
            let hv_front = hypervolume(&front, &reference);
            let hv_chosen = hypervolume(&nondominated(&chosen_pts), &reference);
            if method == "paper" {
                for t in 0..n_tasks {
                    let mut f2: Vec<(f64, f64)> =
                        front.iter().map(|v| (v[0], -signs[t] * v[1 + t])).collect();
                    f2.sort_by(|a, b| a.0.total_cmp(&b.0));
                    panels_front[t].push(Series {
                        label: format!("front, {:.0}%", 100.0 * frac),
                        points: f2,
                        line: false,
                    });
                    panels_front[t].push(Series {
                        label: format!("paper, {:.0}%", 100.0 * frac),
                        points: chosen_pts
                            .iter()
                            .map(|v| (v[0], -signs[t] * v[1 + t]))
                            .collect(),
                        line: false,
                    });
                }
            }
            let violations_predicted = chosen
                .iter()
                .filter(|(_, c)| p_val.evaluate(c).is_ok_and(|c| c.latency_us > budget))
                .count();
            let violations_measured = a.measure.then(|| {
                chosen
                    .iter()
                    .filter(|(_, c)| measured.get(c).is_some_and(|&us| us > budget))
                    .count()
            });
            methods.push(MethodReport {
                method: method.into(),
                answered: chosen.len(),
                spearman: spearmans,
                hypervolume_ratio: if hv_front > 0.0 {
                    hv_chosen / hv_front
                } else {
                    0.0
                },
                violations_predicted,
                violations_measured,
                mean_metric: means,
            });
            bar.inc(1);
        }
        report.budgets.push(BudgetReport {
            budget_us: budget,
            fraction_of_full: frac,
            methods,
        });
    }
    bar.finish_and_clear();
    let md = markdown(&report);
    print!("{md}");
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.plot {
        let mut panels = Vec::new();
        for t in 0..n_tasks {
            panels.push(Panel {
                title: format!(
                    "{}: test {} vs preference (paper mode)",
                    task_names[t], metric_names[t]
                ),
                x_desc: format!("preference weight of {}", task_names[t]),
                y_desc: metric_names[t].clone(),
                series: std::mem::take(&mut panels_pref[t]),
            });
        }
        for t in 0..n_tasks {
            panels.push(Panel {
                title: format!(
                    "{}: test Pareto front and paper-mode choices",
                    task_names[t]
                ),
                x_desc: "predicted latency (us)".into(),
                y_desc: metric_names[t].clone(),
                series: std::mem::take(&mut panels_front[t]),
            });
        }
        plot_panels(p, &panels, n_tasks, (640, 440))?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// The report as a Markdown table.
fn markdown(r: &ControlReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Widths chosen on the validation set ({} samples), reported on the test set ({} samples); \
         {} preference vectors per budget; 95% intervals from {} bootstrap resamples of the test \
         set; latency table: {}.\n",
        r.samples.0, r.samples.1, r.preferences, r.bootstrap, r.target
    );
    let mut head = "| budget | method |".to_string();
    let mut rule = "|---|---|".to_string();
    for (t, m) in &r.tasks {
        let _ = write!(head, " Spearman {t} [95% CI] | mean {m} {t} |");
        rule.push_str("---|---|");
    }
    head.push_str(" hypervolume / front | violations (table / measured) |");
    rule.push_str("---|---|");
    let _ = writeln!(s, "{head}\n{rule}");
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:+.3}"));
    for b in &r.budgets {
        for m in &b.methods {
            let mut row = format!(
                "| {:.0} us ({:.0}% of full) | {} |",
                b.budget_us,
                100.0 * b.fraction_of_full,
                m.method
            );
            if m.answered == 0 {
                for _ in &r.tasks {
                    row.push_str(" no configuration within the budget | |");
                }
                row.push_str(" | |");
                let _ = writeln!(s, "{row}");
                continue;
            }
            for (t, metric) in &r.tasks {
                let c = &m.spearman[t];
                let ci = match (c.lo, c.hi) {
                    (Some(lo), Some(hi)) => format!(" [{lo:+.2}, {hi:+.2}]"),
                    _ => String::new(),
                };
                let mean = m.mean_metric[t];
                let mean = if lower_is_better(metric) {
                    format!("{mean:.4}")
                } else {
                    format!("{:.1}%", 100.0 * mean)
                };
                let _ = write!(row, " {}{ci} | {mean} |", f(c.value));
            }
            let _ = write!(
                row,
                " {:.1}% | {} / {} |",
                100.0 * m.hypervolume_ratio,
                m.violations_predicted,
                m.violations_measured
                    .map_or("not measured".to_string(), |v| v.to_string())
            );
            let _ = writeln!(s, "{row}");
        }
    }
    s
}
