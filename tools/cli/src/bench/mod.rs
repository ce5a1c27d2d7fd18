//! `edgeslim bench`: inference time of edgeslim next to tract and ONNX Runtime on the same
//! model and the same input, in one run (method: `docs/performance.md`).
//!
//! - **Model.** An ONNX file is compiled as `edgeslim compile` does (a float file calibrates
//!   with `--calib`, else `calib.npy` beside it); a model blob (`.esm`) is timed as it is, and
//!   tract and ONNX Runtime need its ONNX file (`--onnx`).
//! - **Input.** The first sample of `inputs.npy`, `eval.npz` (`x`) or `calib.npy` beside the
//!   model, the first that exists; else deterministic pseudo-random values in the range of the
//!   model's input quantization. The same float input, batch 1, goes to every engine.
//! - **Engines.** edgeslim at each `--width` configuration (default: the widest and the
//!   narrowest), tract's optimised plan of the ONNX file, ONNX Runtime through a Python
//!   harness (`ort.rs`) whose per-call overhead is measured and subtracted. An engine that
//!   cannot run here (no ONNX file, no python3 or onnxruntime) is "not measured", with the
//!   reason; it never fails the bench.
//! - **Agreement.** edgeslim's full-width outputs against tract's and ORT's on the timed input:
//!   a fast wrong model must not look like a result.
//! - **Targets.** [`Target`] names where edgeslim runs; `host` is this machine (`host.rs`),
//!   `cortex-m4` QEMU's Cortex-M4F board with exact instruction counts per op, beside CMSIS-NN
//!   (`m4.rs`).

mod host;
pub(crate) mod m4;
mod ort;
pub mod stats;
mod tract;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgeslim_compiler::run::{input_sample_shape, split_batch};
use edgeslim_compiler::width::describe;
use edgeslim_compiler::{
    Array, BatchOutput, CompileOptions, compile, parse_widths, read_npy, read_npz, run_batch,
};
use edgeslim_runtime::{Interpreter, Model, TaskMask, WidthConfig};
use serde::Serialize;

use stats::{Summary, ratio, subtract_overhead, summarize};

/// The `format` of `edgeslim bench --json`.
pub const BENCH_FORMAT: &str = "edgeslim.bench/1";

/// Options of `edgeslim bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model: an ONNX file (float, QDQ or QOperator; compiled here) or a model blob (.esm).
    pub model: PathBuf,
    /// A width configuration to time, as `run --width` takes it (e.g. encoder=0.5,digit=1.0;
    /// others at full width). Repeat for several. Default: the widest and the narrowest.
    #[arg(long = "width", value_name = "SPEC")]
    pub widths: Vec<String>,
    /// Timed calls per engine.
    #[arg(long, default_value_t = 200)]
    pub iters: usize,
    /// Calibration samples for a float ONNX model, float32 [N, C, H, W] .npy (default:
    /// calib.npy beside it).
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// The ONNX file a .esm model was compiled from: tract and ONNX Runtime run it.
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// Where edgeslim runs: `host` (this machine) or `cortex-m4` (QEMU's mps2-an386 board,
    /// exact instruction counts per op, beside CMSIS-NN when CMSIS_NN_DIR is set; builds the
    /// repository's firmware, run it from the repository).
    #[arg(long, default_value = "host")]
    pub target: String,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where edgeslim's side of a bench runs.
///
/// Extension point: a new target (e.g. a Cortex-M board in QEMU) is a variant here, its name in
/// [`TARGETS`], and its arm in [`bench`] calling its own module (a file beside `host.rs`) that
/// returns the same [`BenchReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This machine.
    Host,
    /// QEMU's mps2-an386 (Cortex-M4F) under `-icount shift=0`: instruction counts, not time.
    CortexM4,
}

/// Every target by its `--target` name.
pub const TARGETS: &[(&str, Target)] = &[("host", Target::Host), ("cortex-m4", Target::CortexM4)];

impl FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        TARGETS
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, t)| t)
            .ok_or_else(|| {
                let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
                anyhow!(
                    "bench cannot run on target {s:?}: supported targets: {}",
                    names.join(", ")
                )
            })
    }
}

/// Everything `bench` measured, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Always [`BENCH_FORMAT`].
    pub format: &'static str,
    /// The model as given.
    pub model: String,
    /// The ONNX file tract and ONNX Runtime ran, if any.
    pub onnx: Option<String>,
    /// `float` (calibrated here), `prequantized` (QDQ / QOperator) or `blob` (a given .esm).
    pub source: String,
    /// Where edgeslim ran.
    pub target: String,
    /// The machine.
    pub machine: Machine,
    /// The input every engine got.
    pub input: InputInfo,
    /// Timed calls per engine.
    pub iters: usize,
    /// Interleaved rounds they were spread over.
    pub rounds: usize,
    /// Untimed calls per engine first.
    pub warmup: usize,
    /// What one timed call is.
    pub timing: String,
    /// One entry per engine (edgeslim once per width configuration).
    pub engines: Vec<EngineResult>,
    /// Median time ratios edgeslim / other engine.
    pub ratios: Vec<Ratio>,
    /// edgeslim's full-width outputs against each reference (`cortex-m4`: the outputs against
    /// the host interpreter's, every CMSIS-NN layer against edgeslim's).
    pub agreement: Vec<Agreement>,
    /// `cortex-m4` only: instruction counts per configuration and op.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cortex_m4: Option<m4::M4Report>,
}

/// The machine a bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Logical CPUs available.
    pub logical_cpus: usize,
    /// `linux-x86_64` etc.
    pub os: String,
}

/// The input of a bench.
#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    /// Where it came from: a file beside the model and the sample, or `pseudo-random`.
    pub source: String,
    /// Its ONNX shape, batch 1.
    pub shape: Vec<usize>,
}

/// One engine's result.
#[derive(Debug, Clone, Serialize)]
pub struct EngineResult {
    /// `edgeslim`, `tract` or `onnxruntime`.
    pub engine: String,
    /// edgeslim: the width configuration, `segment=multiplier,...`.
    pub config: Option<String>,
    /// Short label for tables.
    pub label: String,
    /// How the engine was called.
    pub how: String,
    /// Timing summary (ORT: harness overhead subtracted); `null` when not measured.
    pub stats: Option<Summary>,
    /// Why the engine was not measured; `null` when it was.
    pub not_measured: Option<String>,
    /// ORT only: the raw harness timings and the Identity model's.
    pub harness: Option<Harness>,
    /// `cortex-m4` only: instructions of one inference (CMSIS-NN: of the layers it ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
}

/// ONNX Runtime's raw timings and the overhead subtracted from them.
#[derive(Debug, Clone, Serialize)]
pub struct Harness {
    /// `session.run` of the model as timed in Python.
    pub raw: Summary,
    /// The same loop around an Identity model on the same input (its median is subtracted).
    pub overhead: Summary,
    /// Versions.
    pub version: String,
}

/// `edgeslim` time / `versus` time, medians.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The edgeslim entry's label.
    pub edgeslim: String,
    /// `tract` or `onnxruntime`.
    pub versus: String,
    /// `< 1`: edgeslim is faster. `null` when either was not measured.
    pub ratio: Option<f64>,
}

/// edgeslim's full-width outputs against a reference engine's, on the timed input.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// `tract` or `onnxruntime`.
    pub reference: String,
    /// `check` (tract: the importer, the reference the conformance suite holds edgeslim to;
    /// a disagreement is warned about) or `information` (ONNX Runtime: its fused int8 kernels
    /// may saturate or round differently from the file's QDQ semantics, notably on x86 without
    /// VNNI and on inputs far outside the calibration data).
    pub role: String,
    /// Why there was no comparison; `null` when there was.
    pub not_checked: Option<String>,
    /// Outputs that could not be paired (each fails the comparison).
    pub problems: Vec<String>,
    /// Per output.
    pub outputs: Vec<OutputAgreement>,
    /// Every output within its bound (`null` when not checked).
    pub ok: Option<bool>,
}

/// One output compared.
#[derive(Debug, Clone, Serialize)]
pub struct OutputAgreement {
    /// Output name.
    pub name: String,
    /// Elements.
    pub elements: usize,
    /// edgeslim's output quantization step.
    pub scale: f32,
    /// Largest |edgeslim - reference| in output steps.
    pub max_steps: f64,
    /// Mean |edgeslim - reference| in output steps.
    pub mean_steps: f64,
    /// A classifier output (a vector of 2 or more scores): both engines' top-1 class.
    pub top1: Option<(usize, usize)>,
    /// The bound on `max_steps` (`null`: only the top-1 class is checked).
    pub max_steps_bound: Option<f64>,
    /// Within the bound and, for a classifier, the same top-1 class.
    pub ok: bool,
}

/// Largest difference, in output steps, allowed between edgeslim and a reference running a
/// pre-quantized file: the conformance suite sees <= 1 step on QDQ files and a few steps on
/// rare elements of QOperator files (`tests/conformance/README.md`). A float file compiled here
/// carries edgeslim's own calibration error, so only its top-1 class is checked.
pub const PREQUANTIZED_MAX_STEPS: f64 = 10.0;

/// The compiled (or given) model and its provenance.
struct Prepared {
    blob: Vec<u8>,
    onnx: Option<PathBuf>,
    source: String,
    /// Where the model's data files would be.
    dir: PathBuf,
}

fn prepare(a: &BenchArgs) -> Result<Prepared> {
    let dir = a
        .model
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let is_onnx = a
        .model
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if is_onnx {
        if a.onnx.is_some() {
            bail!(
                "--onnx names the ONNX file of a .esm model; {} is one",
                a.model.display()
            );
        }
        let opts = CompileOptions {
            calib: a.calib.clone(),
            progress: !a.json,
            ..CompileOptions::default()
        };
        let c =
            compile(&a.model, &opts).with_context(|| format!("compiling {}", a.model.display()))?;
        for w in &c.report.warnings {
            eprintln!("warning: {w}");
        }
        return Ok(Prepared {
            blob: c.blob,
            onnx: Some(a.model.clone()),
            source: c.report.source,
            dir,
        });
    }
    if a.calib.is_some() {
        bail!(
            "--calib calibrates an ONNX model; {} is not an .onnx file",
            a.model.display()
        );
    }
    let blob =
        std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    Model::parse(&blob).map_err(|e| {
        anyhow!(
            "{} is neither an ONNX file (.onnx) nor a valid model blob: {e}",
            a.model.display()
        )
    })?;
    Ok(Prepared {
        blob,
        onnx: a.onnx.clone(),
        source: "blob".into(),
        dir,
    })
}

/// The bench input, NCHW batch 1 (`[1, C, H, W]` or `[1, K]`), and where it came from.
fn bench_input(model: &Model<'_>, dir: &Path) -> Result<(Array<f32>, String)> {
    let mut shape = vec![1];
    shape.extend(input_sample_shape(model));
    let per = model.input_len();
    let candidates: [(&str, Option<&str>); 3] = [
        ("inputs.npy", None),
        ("eval.npz", Some("x")),
        ("calib.npy", None),
    ];
    for (file, key) in candidates {
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let data = match key {
            None => read_npy(&path)?,
            Some(k) => read_npz(&path)?
                .remove(k)
                .with_context(|| format!("{} has no array {k:?}", path.display()))?,
        };
        let a = data
            .into_f32()
            .with_context(|| format!("{}: not float samples", path.display()))?;
        split_batch(model, &a).with_context(|| {
            format!("{} beside the model does not fit its input", path.display())
        })?;
        let data = a
            .data
            .get(..per)
            .with_context(|| format!("{} holds no sample", path.display()))?
            .to_vec();
        let what = match key {
            None => format!("{file} sample 0"),
            Some(k) => format!("{file} {k}[0]"),
        };
        return Ok((Array { shape, data }, what));
    }
    // xorshift64*, uniform over the input quantization's range.
    let (scale, zp) = model.input_quant();
    let (lo, hi) = ((-128 - zp) as f32 * scale, (127 - zp) as f32 * scale);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let data = (0..per)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let u = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect();
    Ok((
        Array { shape, data },
        format!("pseudo-random in [{lo}, {hi}] (no sample file beside the model)"),
    ))
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Compare edgeslim's outputs with a reference's (matched by name; by position when no name
/// matches and the counts agree).
fn compare(
    reference: &str,
    ours: &[BatchOutput],
    theirs: &[(String, Vec<f32>)],
    prequantized: bool,
) -> Agreement {
    let mut outputs = Vec::new();
    let mut problems = Vec::new();
    for (k, o) in ours.iter().enumerate() {
        let t = theirs
            .iter()
            .find(|(n, _)| *n == o.name)
            .or_else(|| (ours.len() == theirs.len()).then(|| &theirs[k]));
        let Some((_, t)) = t else {
            problems.push(format!("{reference} has no output {:?}", o.name));
            continue;
        };
        let a = &o.float.data;
        if a.len() != t.len() {
            problems.push(format!(
                "output {}: edgeslim has {} values, {reference} {}",
                o.name,
                a.len(),
                t.len()
            ));
            continue;
        }
        let scale = o.quant.0;
        let steps: Vec<f64> = a
            .iter()
            .zip(t)
            .map(|(x, y)| f64::from((x - y).abs() / scale))
            .collect();
        let max_steps = steps.iter().copied().fold(0.0, f64::max);
        let mean_steps = steps.iter().sum::<f64>() / steps.len().max(1) as f64;
        let top1 = (a.len() >= 2 && o.float.shape.len() <= 2).then(|| (argmax(a), argmax(t)));
        let bound = prequantized.then_some(PREQUANTIZED_MAX_STEPS);
        let ok = max_steps.is_finite()
            && bound.is_none_or(|b| max_steps <= b)
            && top1.is_none_or(|(x, y)| x == y);
        outputs.push(OutputAgreement {
            name: o.name.clone(),
            elements: a.len(),
            scale,
            max_steps,
            mean_steps,
            top1,
            max_steps_bound: bound,
            ok,
        });
    }
    let ok = problems.is_empty() && outputs.iter().all(|o| o.ok);
    Agreement {
        reference: reference.into(),
        role: role_of(reference).into(),
        not_checked: None,
        problems,
        outputs,
        ok: Some(ok),
    }
}

/// tract is the reference edgeslim is held to; ONNX Runtime's outputs are shown for information.
fn role_of(reference: &str) -> &'static str {
    if reference == "tract" {
        "check"
    } else {
        "information"
    }
}

impl Agreement {
    fn not_checked(reference: &str, why: String) -> Self {
        Agreement {
            reference: reference.into(),
            role: role_of(reference).into(),
            not_checked: Some(why),
            problems: Vec::new(),
            outputs: Vec::new(),
            ok: None,
        }
    }
}

/// `edgeslim bench`.
pub fn bench(a: BenchArgs) -> Result<()> {
    let target: Target = a.target.parse()?;
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    // The M4's firmware and tools first: missing ones fail before a model is compiled.
    let m4_setup = match target {
        Target::CortexM4 => Some(m4::preflight()?),
        Target::Host => None,
    };
    let p = prepare(&a)?;
    let report = match m4_setup {
        Some(setup) => m4::bench_m4(&a, &p, setup)?,
        None => bench_host(&a, &p)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if let Some(m) = &report.cortex_m4 {
        print!("{}", m4::to_text(&report, m));
    } else {
        print!("{}", to_text(&report));
    }
    if report.cortex_m4.is_some() {
        // On the M4 both checks are exact: a difference is a bug, not a tolerance.
        let problems: Vec<&str> = report
            .agreement
            .iter()
            .filter(|ag| ag.ok == Some(false))
            .flat_map(|ag| ag.problems.iter().map(String::as_str))
            .collect();
        if !problems.is_empty() {
            bail!("cortex-m4: {}", problems.join("; "));
        }
        return Ok(());
    }
    for ag in &report.agreement {
        if ag.ok == Some(false) && ag.role == "check" {
            eprintln!(
                "warning: edgeslim's outputs do not agree with {}'s (see the agreement section): \
                 these timings may be of a wrong model",
                ag.reference
            );
        }
    }
    Ok(())
}

/// The width configurations to time: `--width` specs, else the widest and the narrowest (once
/// when they are the same); with a label each.
fn width_configs(model: &Model<'_>, specs: &[String]) -> Result<Vec<(WidthConfig, String)>> {
    if specs.is_empty() {
        let (full, narrow) = (WidthConfig::full(model), WidthConfig::narrowest(model));
        let mut v = vec![(full, "widest".to_string())];
        if describe(model, &narrow) != describe(model, &full) {
            v.push((narrow, "narrowest".to_string()));
        }
        return Ok(v);
    }
    let mut v: Vec<(WidthConfig, String)> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let w = parse_widths(model, s).with_context(|| format!("--width {s:?}"))?;
        // Labelled by the spec as typed (`full` when empty), made unique.
        let mut label = if s.trim().is_empty() {
            "full".to_string()
        } else {
            s.trim().to_string()
        };
        if v.iter().any(|(_, l)| *l == label) {
            label = format!("{label} #{}", i + 1);
        }
        v.push((w, label));
    }
    Ok(v)
}

fn bench_host(a: &BenchArgs, p: &Prepared) -> Result<BenchReport> {
    let model = Model::parse(&p.blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
    let configs = width_configs(&model, &a.widths)?;
    let (x, input_source) = bench_input(&model, &p.dir)?;
    let (_, mut nhwc) = split_batch(&model, &x)?;
    let input = nhwc.pop().context("no input sample")?;
    let all = TaskMask::all(&model);

    // tract and ORT, each with the reason when it cannot run.
    let no_onnx = || match p.source.as_str() {
        "blob" => format!(
            "no ONNX file for {} (pass --onnx MODEL.onnx)",
            a.model.display()
        ),
        _ => "no ONNX file".to_string(),
    };
    let mut tract = match &p.onnx {
        Some(onnx) => tract::load(onnx, &x.shape, &x.data).map_err(|e| format!("{e:#}")),
        None => Err(no_onnx()),
    };
    let npy = std::env::temp_dir().join(format!("edgeslim-bench-input-{}.npy", std::process::id()));
    let mut ort = match &p.onnx {
        Some(onnx) => edgeslim_compiler::write_f32(&npy, &x)
            .and_then(|()| ort::start(onnx, &npy))
            .map_err(|e| format!("{e:#}")),
        None => Err(no_onnx()),
    };
    let _ = std::fs::remove_file(&npy);

    // Agreement first: the reference outputs come from the same loaded engines.
    let full = WidthConfig::full(&model);
    let ours = run_batch(&p.blob, &x, &full, all)?;
    let prequantized = p.source == "prequantized";
    let mut agreement = Vec::new();
    for (name, outs) in [
        (
            "tract",
            match &mut tract {
                Ok(t) => t.outputs().map_err(|e| format!("{e:#}")),
                Err(e) => Err(e.clone()),
            },
        ),
        (
            "onnxruntime",
            match &mut ort {
                Ok(o) => o.outputs().map_err(|e| format!("{e:#}")),
                Err(e) => Err(e.clone()),
            },
        ),
    ] {
        agreement.push(match outs {
            Ok(theirs) => compare(name, &ours, &theirs, prequantized),
            Err(why) => Agreement::not_checked(name, why),
        });
    }

    let ort_version = ort.as_ref().map(|o| o.version()).unwrap_or_default();
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut engines = host::Engines {
        interp: Interpreter::new(&model, &mut arena).map_err(|e| anyhow!("{e}"))?,
        input,
        configs: configs.iter().map(|(w, _)| *w).collect(),
        tasks: all,
        tract: None,
        ort: None,
    };
    let tract_err = tract.as_ref().err().cloned();
    let ort_err = ort.as_ref().err().cloned();
    engines.tract = tract.ok();
    engines.ort = ort.ok();
    let t = host::measure(&mut engines, a.iters, !a.json)?;
    drop(engines);
    let (rounds, warmup) = host::plan(a.iters);

    let mut results = Vec::new();
    for ((w, which), us) in configs.iter().zip(&t.edgeslim) {
        let desc = describe(&model, w);
        results.push(EngineResult {
            engine: "edgeslim".into(),
            config: Some(desc),
            label: format!("edgeslim {which}"),
            how: "Interpreter::run(Input::F32(x), widths, every task) on one interpreter and \
                  arena reused; input quantization included"
                .into(),
            stats: summarize(us),
            not_measured: None,
            harness: None,
            instructions: None,
        });
    }
    let tract_stats = match (t.tract, tract_err) {
        (Some(Ok(us)), _) => Ok(summarize(&us).context("tract: no timings")?),
        (Some(Err(e)), _) => Err(format!("tract failed during the run: {e}")),
        (None, Some(e)) => Err(e),
        (None, None) => Err("not loaded".into()),
    };
    results.push(EngineResult {
        engine: "tract".into(),
        config: None,
        label: "tract".into(),
        how: tract::HOW.into(),
        stats: tract_stats.as_ref().ok().copied(),
        not_measured: tract_stats.err(),
        harness: None,
        instructions: None,
    });
    let (ort_stats, harness) = match (t.ort, ort_err) {
        (Some(Ok((raw, id))), _) => {
            let net = subtract_overhead(&raw, &id).context("onnxruntime: no overhead timings")?;
            let h = Harness {
                raw: summarize(&raw).context("onnxruntime: no timings")?,
                overhead: summarize(&id).context("onnxruntime: no overhead timings")?,
                version: ort_version,
            };
            (
                Ok(summarize(&net).context("onnxruntime: no timings")?),
                Some(h),
            )
        }
        (Some(Err(e)), _) => (Err(format!("onnxruntime failed during the run: {e}")), None),
        (None, Some(e)) => (Err(e), None),
        (None, None) => (Err("not started".into()), None),
    };
    results.push(EngineResult {
        engine: "onnxruntime".into(),
        config: None,
        label: "onnxruntime".into(),
        how: ort::HOW.into(),
        stats: ort_stats.as_ref().ok().copied(),
        not_measured: ort_stats.err(),
        harness,
        instructions: None,
    });

    let mut ratios = Vec::new();
    for e in results.iter().filter(|e| e.engine == "edgeslim") {
        for other in results.iter().filter(|o| o.engine != "edgeslim") {
            ratios.push(Ratio {
                edgeslim: e.label.clone(),
                versus: other.engine.clone(),
                ratio: match (&e.stats, &other.stats) {
                    (Some(x), Some(y)) => ratio(x, y),
                    _ => None,
                },
            });
        }
    }
    Ok(BenchReport {
        format: BENCH_FORMAT,
        model: a.model.display().to_string(),
        onnx: p.onnx.as_ref().map(|o| o.display().to_string()),
        source: p.source.clone(),
        target: "host".into(),
        machine: machine(),
        input: InputInfo {
            source: input_source,
            shape: x.shape.clone(),
        },
        iters: a.iters,
        rounds,
        warmup,
        timing: format!(
            "wall clock around each call, batch 1, one thread per engine, one process; \
             {} calls per engine in {rounds} interleaved rounds (engine order rotating), after \
             {warmup} untimed calls",
            a.iters
        ),
        engines: results,
        ratios,
        agreement,
        cortex_m4: None,
    })
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} us")
    } else {
        format!("{v:.1} us")
    }
}

/// The report for people.
pub fn to_text(r: &BenchReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "edgeslim bench {} (target {}, {}; {}, {} logical CPUs)",
        r.model, r.target, r.source, r.machine.cpu, r.machine.logical_cpus
    );
    let _ = writeln!(s, "input: {} {:?}", r.input.source, r.input.shape);
    let _ = writeln!(s, "timing: {}", r.timing);
    for e in &r.engines {
        if let Some(c) = &e.config {
            let _ = writeln!(s, "{}: {c}", e.label);
        }
    }
    if let Some(o) = r
        .engines
        .iter()
        .find(|e| e.engine == "onnxruntime" && e.stats.is_some())
    {
        let version = o.harness.as_ref().map_or("", |h| h.version.as_str());
        let _ = writeln!(s, "onnxruntime: {version}, {}", o.how);
    }
    let _ = writeln!(s);
    let w = r
        .engines
        .iter()
        .map(|e| e.label.len())
        .max()
        .unwrap_or(8)
        .max(30);
    let _ = writeln!(
        s,
        "{:<w$} {:>10} {:>21} {:>9}",
        "engine", "median", "p10 - p90", "MAD"
    );
    for e in &r.engines {
        match &e.stats {
            Some(st) => {
                let _ = writeln!(
                    s,
                    "{:<w$} {:>10} {:>21} {:>9}",
                    e.label,
                    us(st.median_us),
                    format!("{} - {}", us(st.p10_us), us(st.p90_us)),
                    us(st.mad_us)
                );
                if let Some(h) = &e.harness {
                    let _ = writeln!(
                        s,
                        "{:<w$} {:>10} {:>21} {:>9}",
                        "  (raw session.run)",
                        us(h.raw.median_us),
                        format!("{} - {}", us(h.raw.p10_us), us(h.raw.p90_us)),
                        us(h.raw.mad_us)
                    );
                    let _ = writeln!(
                        s,
                        "{:<w$} {:>10} {:>21} {:>9}",
                        "  (harness overhead, Identity)",
                        us(h.overhead.median_us),
                        format!("{} - {}", us(h.overhead.p10_us), us(h.overhead.p90_us)),
                        us(h.overhead.mad_us)
                    );
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "{:<w$} not measured: {}",
                    e.label,
                    e.not_measured.as_deref().unwrap_or("?")
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\ntime ratio, edgeslim / other (medians; below 1: edgeslim is faster)"
    );
    let others: Vec<&str> = r
        .engines
        .iter()
        .filter(|e| e.engine != "edgeslim")
        .map(|e| e.engine.as_str())
        .collect();
    let _ = write!(s, "{:<w$}", "");
    for o in &others {
        let _ = write!(s, " {:>12}", format!("/ {o}"));
    }
    let _ = writeln!(s);
    for e in r.engines.iter().filter(|e| e.engine == "edgeslim") {
        let _ = write!(s, "{:<w$}", e.label);
        for o in &others {
            let v = r
                .ratios
                .iter()
                .find(|x| x.edgeslim == e.label && x.versus == *o)
                .and_then(|x| x.ratio);
            let _ = write!(
                s,
                " {:>12}",
                v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "\nagreement: edgeslim widest vs each reference on this input"
    );
    for ag in &r.agreement {
        let verdict = match (ag.ok, ag.role.as_str()) {
            (Some(true), _) => "agree",
            (Some(false), "check") => "DISAGREE",
            (Some(false), _) => "differ",
            (None, _) => "not checked",
        };
        let role = if ag.role == "check" {
            ""
        } else {
            " (for information)"
        };
        let _ = write!(s, "  {}{role}: {verdict}", ag.reference);
        if let Some(why) = &ag.not_checked {
            let _ = write!(s, " ({why})");
        }
        let _ = writeln!(s);
        for p in &ag.problems {
            let _ = writeln!(s, "    {p}");
        }
        for o in &ag.outputs {
            let _ = write!(
                s,
                "    {}: max {:.1} steps, mean {:.2} steps (step {:.4}{})",
                o.name,
                o.max_steps,
                o.mean_steps,
                o.scale,
                o.max_steps_bound
                    .map_or_else(String::new, |b| format!(", bound {b}"))
            );
            if let Some((x, y)) = o.top1 {
                let _ = write!(
                    s,
                    ", top-1 {x} vs {y}{}",
                    if x == y { "" } else { " DIFFERENT" }
                );
            }
            let _ = writeln!(s);
        }
    }
    s
}
