//! Choosing compute budgets: `eval`, `profile`, `search`, `bundle`, and the quickstart's `demo`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use edgeslim_search::search::{parse_budget_us, parse_budgets_us};
use edgeslim_search::{
    Bundle, BundleMode, ExactMethod, LatencyTable, MetricTable, Problem, SearchReport,
    SweepOptions, plot_report, sweep,
};

use crate::evaluate::{EvalSet, TaskScore, evaluate_cached, load_eval_set, score_config};
use crate::profile::{ProfileOptions, profile_host};

/// Read and parse a model blob; the blob is returned for hashing.
pub fn load_blob(path: &Path) -> Result<Vec<u8>> {
    let blob = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Model::parse(&blob).map_err(|e| anyhow!("{}: invalid model blob: {e}", path.display()))?;
    Ok(blob)
}

pub(crate) fn parse(blob: &[u8]) -> Result<Model<'_>> {
    Model::parse(blob).map_err(|e| anyhow!("invalid model blob: {e}"))
}

/// `esm-crc32:<body crc>:<bytes>`: identifies a compiled model. Firmware checks a bundle against
/// the header's CRC and the blob length without hashing anything.
pub fn model_hash(model: &Model<'_>, blob: &[u8]) -> String {
    format!("esm-crc32:{:08x}:{}", model.body_crc(), blob.len())
}

pub(crate) fn default_cache() -> PathBuf {
    std::env::var_os("EDGESLIM_CACHE")
        .map_or_else(|| PathBuf::from(".edgeslim-cache"), PathBuf::from)
}

fn pct(v: f64) -> String {
    format!("{:5.1}%", v * 100.0)
}

/// Options of `edgeslim eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model blob.
    pub model: PathBuf,
    /// Eval set: `x` float32 [N, C, H, W] and `y_<task>` labels.
    #[arg(long)]
    pub data: PathBuf,
    /// Write the metric table (edgeslim.metrics/1) here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the metric table as JSON.
    #[arg(long)]
    pub json: bool,
    /// Recompute even when a cached result exists.
    #[arg(long)]
    pub no_cache: bool,
}

/// Options of `edgeslim profile`.
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The model blob.
    pub model: PathBuf,
    /// `host` measures here; any other target needs `--from-table`.
    #[arg(long, default_value = "host")]
    pub target: String,
    /// A latency table measured elsewhere (board, emulator), format edgeslim.latency/1.
    #[arg(long)]
    pub from_table: Option<PathBuf>,
    /// Write the latency table here (default: print JSON).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Timed runs per measurement.
    #[arg(long, default_value_t = 31)]
    pub reps: usize,
    /// Whole configurations (widths and running tasks) to time directly for the additive
    /// check: `all`, or at most this many spread over them.
    #[arg(long, default_value = "256", value_parser = crate::profile::parse_config_count)]
    pub configs: usize,
}

/// Where the costs and the metrics come from.
#[derive(Args, Debug, Clone)]
pub struct Sources {
    /// `host` (measured now, cached) or a device name with `--from-table`.
    #[arg(long, default_value = "host")]
    pub target: String,
    /// Latency table measured elsewhere.
    #[arg(long)]
    pub from_table: Option<PathBuf>,
    /// Eval set to measure task metrics on (cached by model and data hash).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// A metric table from `edgeslim eval -o` instead of `--data`.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Task preferences, e.g. digit=3,bold=1 (default: equal).
    #[arg(long)]
    pub prefer: Option<String>,
    /// Tasks that run, e.g. digit,bold (default: all).
    #[arg(long)]
    pub tasks: Option<String>,
}

/// Options of `edgeslim search`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The model blob.
    pub model: PathBuf,
    /// Latency budget, e.g. 2ms or 350us.
    #[arg(long)]
    pub budget: String,
    #[command(flatten)]
    pub sources: Sources,
    /// Exact search method: auto, exhaustive or bnb.
    #[arg(long, default_value = "auto")]
    pub exact: String,
    /// Plot every configuration, the Pareto front, the budget and the choice (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Controllability report: sweep preference vectors at this budget.
    #[arg(long)]
    pub sweep: bool,
    /// Preference grid divisions of the sweep.
    #[arg(long, default_value_t = 4)]
    pub divisions: u32,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Options of `edgeslim bundle`.
#[derive(Args, Debug)]
pub struct BundleArgs {
    /// The model blob.
    pub model: PathBuf,
    /// Budget levels, e.g. 1ms,2ms,5ms.
    #[arg(long)]
    pub budgets: String,
    #[command(flatten)]
    pub sources: Sources,
    /// Search mode per level: exact or paper.
    #[arg(long, default_value = "exact")]
    pub mode: String,
    /// Output directory for bundle.json and bundle.rs.
    #[arg(short, long)]
    pub output: PathBuf,
    /// For an Ethos-U board: compile every segment each level runs with Vela for this
    /// configuration (ethos-u55-128, ...) and carry the command streams (`npu/` beside the
    /// bundle, named in bundle.json and included by bundle.rs).
    #[arg(long)]
    pub npu: Option<String>,
}

/// Options of `edgeslim demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Bundled model directory (model.onnx, calib.npy, eval.npz).
    #[arg(long, default_value = "models/digits-mtl")]
    pub model_dir: PathBuf,
    /// Latency budget as a fraction of the full-width model's, or an absolute like 40us.
    #[arg(long, default_value = "0.5")]
    pub budget: String,
    /// Task preferences (default: the first task 2, the others 1).
    #[arg(long)]
    pub prefer: Option<String>,
    /// Output directory (model blob, tables, plot).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

/// `edgeslim eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let blob = load_blob(&a.model)?;
    let m = parse(&blob)?;
    let set = load_eval_set(&a.data, &m)?;
    let cache = (!a.no_cache).then(default_cache);
    let (table, cached) =
        evaluate_cached(&m, &model_hash(&m, &blob), &set, cache.as_deref(), true)?;
    if let Some(p) = &a.output {
        table.save(p)?;
    }
    if a.json {
        println!("{}", table.to_json_string()?);
    } else {
        print_metrics(&table, set.n, cached);
    }
    Ok(())
}

fn print_metrics(table: &MetricTable, n: usize, cached: bool) {
    let counts = table.stage_counts();
    let stages = &table.segments[..counts.len()];
    println!(
        "metrics on {n} samples, every (encoder {}, decoder width){}",
        if counts.len() > 1 {
            "configuration"
        } else {
            "width"
        },
        if cached { " (cached)" } else { "" }
    );
    // The encoder configuration as its stages' multipliers (`0.5/1/0.25`).
    let enc = |e: usize| {
        (0..counts.len())
            .map(|k| {
                format!(
                    "{}",
                    stages[k].widths[edgeslim_search::config::stage_width(&counts, e, k)]
                )
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let enc_w = (0..table.encoder_configs())
        .map(|e| enc(e).len())
        .max()
        .unwrap_or(4)
        .max(9);
    for (ti, t) in table.tasks.iter().enumerate() {
        let dec = table.segments.iter().find(|s| s.name == t.segment);
        let better = if table.lower_is_better(ti) {
            "lower is better"
        } else {
            "higher is better"
        };
        println!("{} ({}, {better})", t.name, t.metric);
        print!("{:>enc_w$} \\ dec", "enc");
        if let Some(d) = dec {
            for w in &d.widths {
                print!(" {w:>7.2}");
            }
        }
        println!();
        for (e, row) in t.values.iter().enumerate() {
            print!("{:>w$}", enc(e), w = enc_w + 6);
            for v in row {
                if table.lower_is_better(ti) {
                    print!(" {v:>7.4}");
                } else {
                    print!(" {:>7}", pct(*v));
                }
            }
            println!();
        }
    }
}

/// The latency table for `model` from `--from-table` or measured on the host (cached).
pub(crate) fn latency_table(
    m: &Model<'_>,
    hash: &str,
    target: &str,
    from: Option<&Path>,
    reps: usize,
) -> Result<LatencyTable> {
    if let Some(p) = from {
        let t = LatencyTable::load(p)?;
        if t.model_hash != hash {
            bail!(
                "{} was measured on model {}, this model is {hash}",
                p.display(),
                t.model_hash
            );
        }
        return Ok(t);
    }
    if target != "host" {
        bail!(
            "target {target:?} is measured elsewhere: pass its latency table with --from-table (docs/latency-table.md)"
        );
    }
    let cache = default_cache().join(format!("latency-host-{}.json", hash.replace(':', "-")));
    if let Ok(t) = LatencyTable::load(&cache)
        && t.model_hash == hash
    {
        return Ok(t);
    }
    let opts = ProfileOptions {
        reps,
        ..ProfileOptions::default()
    };
    let t = profile_host(m, hash, opts, true)?;
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    t.save(&cache).ok();
    Ok(t)
}

fn print_latency(t: &LatencyTable) -> Result<()> {
    println!(
        "latency on {} (us), overhead {:.2}",
        t.target, t.overhead_us
    );
    for s in &t.segments {
        print!("{:>12} |", s.name);
        for (w, l) in s.widths.iter().zip(&s.latency_us) {
            print!(" {w:.2}: {l:8.2}");
        }
        println!();
    }
    if let Some(c) = t.check_additive()? {
        println!(
            "additive model vs {} directly timed configs: median error {:.1}%, worst {:.1}%",
            c.configs,
            c.median_rel_error * 100.0,
            c.worst_rel_error * 100.0
        );
    }
    Ok(())
}

/// `edgeslim profile`.
pub fn profile(a: ProfileArgs) -> Result<()> {
    let blob = load_blob(&a.model)?;
    let m = parse(&blob)?;
    let hash = model_hash(&m, &blob);
    let t = match &a.from_table {
        Some(_) => latency_table(&m, &hash, &a.target, a.from_table.as_deref(), a.reps)?,
        None if a.target == "host" => profile_host(
            &m,
            &hash,
            ProfileOptions {
                reps: a.reps,
                max_configs: a.configs,
                ..ProfileOptions::default()
            },
            true,
        )?,
        None => latency_table(&m, &hash, &a.target, None, a.reps)?,
    };
    match &a.output {
        Some(p) => {
            t.save(p)?;
            print_latency(&t)?;
            println!("wrote {}", p.display());
        }
        None => println!("{}", t.to_json_string()?),
    }
    Ok(())
}

fn metric_table(m: &Model<'_>, hash: &str, s: &Sources) -> Result<(MetricTable, Option<EvalSet>)> {
    match (&s.metrics, &s.data) {
        (Some(p), _) => {
            let t = MetricTable::load(p)?;
            if t.model_hash != hash {
                bail!(
                    "{} was evaluated on model {}, this model is {hash}",
                    p.display(),
                    t.model_hash
                );
            }
            Ok((t, None))
        }
        (None, Some(d)) => {
            let set = load_eval_set(d, m)?;
            let (t, _) = evaluate_cached(m, hash, &set, Some(&default_cache()), true)?;
            Ok((t, Some(set)))
        }
        (None, None) => {
            bail!("task metrics needed: pass --data eval.npz or --metrics metrics.json")
        }
    }
}

fn problem(m: &Model<'_>, blob: &[u8], s: &Sources) -> Result<(Problem, Option<EvalSet>)> {
    let hash = model_hash(m, blob);
    let lat = latency_table(m, &hash, &s.target, s.from_table.as_deref(), 31)?;
    let (met, set) = metric_table(m, &hash, s)?;
    let p = Problem::from_spec(lat, met, s.prefer.as_deref(), s.tasks.as_deref())?;
    Ok((p, set))
}

fn exact_method(s: &str) -> Result<ExactMethod> {
    Ok(match s {
        "auto" => ExactMethod::Auto,
        "exhaustive" => ExactMethod::Exhaustive,
        "bnb" | "branch-and-bound" => ExactMethod::BranchAndBound,
        other => bail!("--exact {other:?}: expected auto, exhaustive or bnb"),
    })
}

fn print_report(r: &SearchReport) {
    let show = |label: &str, c: &edgeslim_search::Choice| {
        let widths: Vec<String> = c
            .config
            .multipliers
            .iter()
            .map(|m| format!("{m:.2}"))
            .collect();
        let metrics: Vec<String> = c
            .task_metrics
            .iter()
            .map(|t| format!("{} {}", t.task, t.display()))
            .collect();
        println!(
            "{label:>10}: widths [{}], {:.1} us, score {:.4}, {}",
            widths.join(", "),
            c.latency_us,
            c.score,
            metrics.join(", ")
        );
    };
    println!("budget {:.1} us", r.exact.budget_us);
    match (&r.paper, &r.paper_error) {
        (Some(p), _) => show("paper", &p.chosen),
        (None, Some(e)) => println!("{:>10}: no configuration ({e})", "paper"),
        _ => {}
    }
    show("exact", &r.exact.chosen);
    if let Some(ru) = &r.exact.runner_up {
        show("runner-up", ru);
    }
    if let (Some(g), Some(d)) = (r.score_gap, r.latency_diff_us) {
        println!("exact - paper: score {g:+.4}, latency {:+.1} us", -d);
    }
}

/// `edgeslim search`.
pub fn search(a: SearchArgs) -> Result<()> {
    let blob = load_blob(&a.model)?;
    let m = parse(&blob)?;
    let (p, _) = problem(&m, &blob, &a.sources)?;
    let budget = parse_budget_us(&a.budget)?;
    let report = p.compare(budget, exact_method(&a.exact)?)?;
    if let Some(path) = &a.plot {
        plot_report(path, &p, &report)?;
    }
    let sweep_report = if a.sweep {
        Some(sweep(
            &p,
            budget,
            &SweepOptions {
                divisions: a.divisions,
                progress: !a.json,
                ..SweepOptions::default()
            },
        )?)
    } else {
        None
    };
    if a.json {
        let v = serde_json::json!({ "search": report, "sweep": sweep_report });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print_report(&report);
    if let Some(s) = &sweep_report {
        println!(
            "controllability over {} preference vectors:",
            s.points.len()
        );
        for c in &s.controllability {
            match c.spearman {
                Some(r) => println!("  {:>10}: Spearman(preference, metric) = {r:+.3}", c.task),
                None => println!("  {:>10}: Spearman undefined (constant metric)", c.task),
            }
        }
        if let Some(h) = &s.hypervolume {
            println!(
                "  hypervolume of the chosen configs: {:.1}% of the exhaustive Pareto front",
                h.ratio * 100.0
            );
        }
    }
    if let Some(path) = &a.plot {
        println!("plot: {}", path.display());
    }
    Ok(())
}

/// `edgeslim bundle`.
pub fn bundle(a: BundleArgs) -> Result<()> {
    let blob = load_blob(&a.model)?;
    let m = parse(&blob)?;
    let (p, _) = problem(&m, &blob, &a.sources)?;
    let budgets = parse_budgets_us(&a.budgets)?;
    let mode = match a.mode.as_str() {
        "exact" => BundleMode::Exact,
        "paper" => BundleMode::Paper,
        other => bail!("--mode {other:?}: expected exact or paper"),
    };
    let mut b = Bundle::build(&p, &budgets, mode)?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create {}", a.output.display()))?;
    if let Some(config) = &a.npu {
        let work = crate::profile::npu::work_dir(&b.model_hash, &format!("{config}-raw"));
        let cpu = crate::npu_streams::attach(&m, &mut b, config, &a.output, &work)?;
        for (s, e, w) in cpu {
            println!(
                "segment {s} at encoder width {e}, width {w}: Vela leaves operators on the CPU; \
                 no command stream, the firmware runs it on the CPU"
            );
        }
    }
    b.save_json(&a.output.join("bundle.json"))?;
    b.save_rust(&a.output.join("bundle.rs"))?;
    for (i, l) in b.levels.iter().enumerate() {
        print!(
            "budget {:>8} us: widths {:?}, predicted {:.1} us, score {:.4}",
            l.budget_us, l.multipliers, l.predicted_latency_us, l.score
        );
        match &b.npu {
            Some(n) => println!(
                ", {} NPU stream(s), {} bytes of flash",
                n.levels[i].len(),
                n.level_flash_bytes(i)
            ),
            None => println!(),
        }
    }
    println!("wrote {}/bundle.json and bundle.rs", a.output.display());
    Ok(())
}

/// `edgeslim inspect MODEL --bundle FILE`: the bundle's levels (checked to be for this model)
/// with the NPU command streams each carries and their flash, as text and as JSON.
pub fn bundle_summary(blob: &[u8], path: &Path) -> Result<(String, serde_json::Value)> {
    use std::fmt::Write as _;
    let m = parse(blob)?;
    let b = Bundle::load(path, &model_hash(&m, blob))?;
    let mut t = String::new();
    writeln!(
        t,
        "bundle {} ({} levels, target {})",
        path.display(),
        b.levels.len(),
        b.target
    )?;
    let mut levels = Vec::new();
    for (i, l) in b.levels.iter().enumerate() {
        write!(
            t,
            "  level {i}: budget {} us, widths {:?}, tasks {:#x}, predicted {:.1} us",
            l.budget_us, l.multipliers, l.task_mask, l.predicted_latency_us
        )?;
        let mut j = serde_json::json!({
            "budget_us": l.budget_us,
            "widths": l.widths,
            "task_mask": l.task_mask,
            "predicted_latency_us": l.predicted_latency_us,
        });
        if let Some(n) = &b.npu {
            let segs: Vec<u8> = n.levels[i]
                .iter()
                .filter_map(|&k| n.streams.get(usize::from(k)).map(|s| s.segment))
                .collect();
            write!(
                t,
                ", NPU segments {segs:?}, {} bytes of NPU flash",
                n.level_flash_bytes(i)
            )?;
            j["npu_segments"] = serde_json::json!(segs);
            j["npu_flash_bytes"] = serde_json::json!(n.level_flash_bytes(i));
        }
        writeln!(t)?;
        levels.push(j);
    }
    let mut j = serde_json::json!({ "target": b.target, "levels": levels });
    if let Some(n) = &b.npu {
        let (scratch, fast) = n.scratch_bytes();
        writeln!(
            t,
            "  NPU {}: {} command streams, {} bytes of flash in all (command streams and \
             weights), scratch {scratch} bytes, fast scratch {fast} bytes",
            n.config,
            n.streams.len(),
            n.total_flash_bytes()
        )?;
        j["npu"] = serde_json::json!({
            "config": n.config,
            "streams": n.streams.len(),
            "flash_bytes": n.total_flash_bytes(),
            "scratch_bytes": scratch,
            "fast_scratch_bytes": fast,
        });
    }
    Ok((t, j))
}

/// Every task's metric and the median latency of `model` at one configuration, on `set`.
fn simulate(m: &Model<'_>, set: &EvalSet, w: &WidthConfig) -> Result<(Vec<TaskScore>, f64)> {
    let scores = score_config(m, set, w, 1)?;
    let mut arena = vec![0u8; m.arena_bytes()];
    let mut interp = Interpreter::new(m, &mut arena)?;
    let mut times = Vec::with_capacity(set.n);
    for s in 0..set.n {
        let x = &set.x[s * set.sample_len..(s + 1) * set.sample_len];
        let t0 = Instant::now();
        interp.run(Input::F32(x), w, TaskMask::all(m))?;
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok((scores, times.get(times.len() / 2).copied().unwrap_or(0.0)))
}

/// `edgeslim demo`: the quickstart's main job on a bundled model.
pub fn demo(a: DemoArgs) -> Result<()> {
    let onnx = a.model_dir.join("model.onnx");
    let calib = a.model_dir.join("calib.npy");
    let data = a.model_dir.join("eval.npz");
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    println!("== compile {}", onnx.display());
    let c = edgeslim_compiler::compile(
        &onnx,
        &edgeslim_compiler::CompileOptions {
            calib: Some(calib),
            progress: true,
            ..Default::default()
        },
    )?;
    let esm = a.out.join("model.esm");
    std::fs::write(&esm, &c.blob).with_context(|| format!("cannot write {}", esm.display()))?;
    println!(
        "{} B flash ({} B weights), arena {} B (liveness lower bound {} B), {:.1} s",
        c.report.blob_bytes,
        c.report.weight_bytes,
        c.report.arena_bytes,
        c.report.arena_lower_bound,
        c.report.seconds
    );
    let blob = c.blob;
    let m = parse(&blob)?;
    let hash = model_hash(&m, &blob);
    println!("== profile on this machine");
    let lat = profile_host(&m, &hash, ProfileOptions::default(), true)?;
    lat.save(&a.out.join("latency.json"))?;
    print_latency(&lat)?;
    println!("== eval every width configuration on {}", data.display());
    let set = load_eval_set(&data, &m)?;
    let (met, _) = evaluate_cached(&m, &hash, &set, Some(&default_cache()), true)?;
    met.save(&a.out.join("metrics.json"))?;
    let prefer = a.prefer.clone().unwrap_or_else(|| {
        met.tasks
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{}={}", t.name, if i == 0 { 2 } else { 1 }))
            .collect::<Vec<_>>()
            .join(",")
    });
    let p = Problem::from_spec(lat.clone(), met, Some(&prefer), None)?;
    let full_idx: Vec<u8> = WidthConfig::full(&m).as_slice().to_vec();
    let full_pred = p.evaluate(&full_idx)?;
    let budget = match a.budget.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => f * full_pred.latency_us,
        _ => parse_budget_us(&a.budget)?,
    };
    println!("== search: budget {budget:.1} us, preferences {prefer}");
    let report = p.compare(budget, ExactMethod::Auto)?;
    print_report(&report);
    let plot = a.out.join("pareto.svg");
    plot_report(&plot, &p, &report)?;
    println!(
        "== simulate on the eval set ({} samples), through the runtime",
        set.n
    );
    let chosen = WidthConfig::from_indices(&report.exact.chosen.config.indices)?;
    let full = WidthConfig::full(&m);
    let names: Vec<&str> = set.labels.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "{:>22} | {} | latency (measured median)",
        "config",
        names
            .iter()
            .map(|n| format!("{n:>7}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (label, w) in [("full width", &full), ("chosen (exact search)", &chosen)] {
        let (scores, us) = simulate(&m, &set, w)?;
        println!(
            "{label:>22} | {} | {us:.1} us",
            scores
                .iter()
                .map(|v| match v.metric {
                    "rmse" => format!("{:>7.4}", v.value),
                    _ => format!("{:>7}", pct(v.value)),
                })
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "wrote {}, {}/latency.json, {}/metrics.json, {}",
        esm.display(),
        a.out.display(),
        a.out.display(),
        plot.display()
    );
    Ok(())
}
