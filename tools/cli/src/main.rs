//! `edgeslim`: compile, inspect and run slimmable multi-task int8 models.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use edgeslim_compiler::{
    CompileOptions, compile, inspect, parse_tasks, parse_widths, read_f32, run_batch,
};
use std::path::PathBuf;

mod bench;
mod choose;
mod control;
mod evaluate;
mod npu_streams;
mod profile;

#[derive(Parser)]
#[command(
    name = "edgeslim",
    version,
    about = "int8 slimmable multi-task models for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile an ONNX model (float, QDQ or QOperator) to a model blob.
    Compile {
        /// The ONNX file.
        model: PathBuf,
        /// Output blob.
        #[arg(short, long)]
        output: PathBuf,
        /// Calibration samples, float32 [N, C, H, W] .npy (default for a float model:
        /// calib.npy beside it, if present).
        #[arg(long)]
        calib: Option<PathBuf>,
        /// Use at most this many calibration samples.
        #[arg(long, default_value_t = 1024)]
        max_calib: usize,
        /// Print the compile report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show ops per segment, widths, MACs and arena per config, flash bytes.
    Inspect {
        /// The model blob.
        model: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also a bundle of this model (`edgeslim bundle`): its levels, and the flash of the
        /// NPU command streams each carries.
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
    /// Run a model blob on float NCHW input.
    Run {
        /// The model blob.
        model: PathBuf,
        /// float32 .npy of the model's input shape, or with a leading axis of N samples.
        #[arg(long)]
        input: PathBuf,
        /// Directory for DIR/<output name>.npy.
        #[arg(long)]
        output_dir: PathBuf,
        /// Width multipliers, e.g. encoder=0.5,digit=1.0 (others at full width).
        #[arg(long, default_value = "")]
        width: String,
        /// Tasks to run, e.g. digit,bold (default: all).
        #[arg(long, default_value = "")]
        tasks: String,
        /// Write int8 outputs instead of dequantized float32.
        #[arg(long)]
        raw: bool,
    },
    /// Every task's metric (accuracy, mIoU or RMSE, from the labels) at every width
    /// configuration, through the runtime.
    Eval(choose::EvalArgs),
    /// Controllability as a paper reports it: widths chosen on a validation set for a simplex
    /// grid of preferences at several budgets (paper mode, exact mode, uniform and static
    /// baselines), reported on a test set: Spearman per task with bootstrap intervals,
    /// hypervolume against the test Pareto front, budget violations; Markdown, JSON, plots.
    Control(control::ControlArgs),
    /// Latency table: every segment at every width, plus the fixed overhead; on the host, from
    /// a device's `profile` log, or in QEMU's Cortex-M4.
    Profile(profile::ProfileArgs),
    /// Best width configuration under a latency budget and task preferences.
    Search(choose::SearchArgs),
    /// Deployment table: budget levels -> width configurations, JSON and Rust for firmware.
    Bundle(choose::BundleArgs),
    /// The quickstart's main job on a bundled model: compile, profile, eval, search, simulate, plot.
    Demo(choose::DemoArgs),
    /// Inference time of edgeslim (at chosen widths), tract and ONNX Runtime on one input, side
    /// by side, and whether their outputs agree.
    Bench(bench::BenchArgs),
    /// Write a model blob (or one segment of it) at one width configuration as an int8 TFLite
    /// flatbuffer, for the TFLite / LiteRT interpreter, TFLite Micro or Vela.
    Export {
        /// The model blob.
        model: PathBuf,
        /// Write TFLite (the one export format).
        #[arg(long, required = true)]
        tflite: bool,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Width multipliers, e.g. encoder=0.5,digit=1.0 (others at full width).
        #[arg(long, default_value = "")]
        width: String,
        /// Tasks whose outputs the graph computes (default: all).
        #[arg(long, default_value = "")]
        tasks: String,
        /// Export only this segment: its inputs are what it reads of other segments.
        #[arg(long)]
        segment: Option<String>,
    },
    /// The ONNX operators `compile` accepts: inputs, attributes, formats and restrictions.
    Ops {
        /// Print the Markdown table of docs/operators.md instead of plain text.
        #[arg(long)]
        markdown: bool,
    },
}

fn main() {
    // No backtraces for users: a closed stdout (`| head`) ends quietly, any other panic is one
    // line and exit code 101. A panic the compiler catches (tract inside the importer) prints
    // nothing here: it becomes the importer's error.
    std::panic::set_hook(Box::new(|info| {
        if edgeslim_compiler::panic_expected() {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("internal error");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("error: internal error: {}", msg.replace('\n', " "));
        std::process::exit(101);
    }));
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Eval(a) => return choose::eval(a),
        Cmd::Control(a) => return control::control(a),
        Cmd::Profile(a) => return profile::profile(a),
        Cmd::Search(a) => return choose::search(a),
        Cmd::Bundle(a) => return choose::bundle(a),
        Cmd::Demo(a) => return choose::demo(a),
        Cmd::Bench(a) => return bench::bench(a),
        Cmd::Ops { markdown } => {
            use edgeslim_compiler::import::{coverage_markdown, coverage_text};
            print!(
                "{}",
                if markdown {
                    coverage_markdown()
                } else {
                    coverage_text()
                }
            );
        }
        Cmd::Compile {
            model,
            output,
            calib,
            max_calib,
            json,
        } => {
            let opts = CompileOptions {
                calib,
                max_calib_samples: max_calib,
                progress: true,
            };
            let c = compile(&model, &opts)?;
            std::fs::write(&output, &c.blob)
                .with_context(|| format!("cannot write {}", output.display()))?;
            for w in &c.report.warnings {
                eprintln!("warning: {w}");
            }
            let r = &c.report;
            if json {
                println!("{}", serde_json::to_string_pretty(r)?);
            } else {
                println!(
                    "{} -> {}: {} ops, {} B blob ({} B weights, {} B params), arena {} B (lower bound {} B), {} calibration samples, {:.2} s",
                    model.display(),
                    output.display(),
                    r.ops,
                    r.blob_bytes,
                    r.weight_bytes,
                    r.param_bytes,
                    r.arena_bytes,
                    r.arena_lower_bound,
                    r.calib_samples,
                    r.seconds
                );
            }
        }
        Cmd::Export {
            model,
            tflite: _,
            output,
            width,
            tasks,
            segment,
        } => {
            let blob = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let m = edgeslim_runtime::Model::parse(&blob)
                .map_err(|e| anyhow!("{}: invalid model blob: {e}", model.display()))?;
            let widths = parse_widths(&m, &width)?;
            let mut mask = parse_tasks(&m, &tasks)?;
            let segment = match segment {
                None => None,
                Some(name) => {
                    let s = m.segment_index(&name).ok_or_else(|| {
                        let names: Vec<&str> = (0..m.num_segments())
                            .filter_map(|i| m.segment(i).map(|s| s.name))
                            .collect();
                        anyhow!("no segment {name:?} (the model has {})", names.join(", "))
                    })?;
                    if tasks.trim().is_empty() && s > 0 {
                        // A decoder alone: the tasks it computes.
                        mask = edgeslim_runtime::TaskMask(0);
                        for t in 0..m.num_tasks() {
                            if m.task_segment(t) == s {
                                mask = mask.with(t);
                            }
                        }
                    }
                    Some(s)
                }
            };
            let opts = edgeslim_tflite::ExportOptions {
                widths,
                tasks: mask,
                part: segment.map_or(edgeslim_tflite::Part::All, edgeslim_tflite::Part::Segment),
            };
            let e = edgeslim_tflite::export(&m, &opts)
                .with_context(|| format!("{}: TFLite export", model.display()))?;
            std::fs::write(&output, &e.bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            let ports = |p: &[edgeslim_tflite::Port]| {
                p.iter()
                    .map(|p| {
                        format!(
                            "{} {:?} (scale {}, zero point {})",
                            p.name, p.shape, p.scale, p.zero_point
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            println!(
                "{} -> {}: {} TFLite operators, {} B; inputs: {}; outputs: {}",
                model.display(),
                output.display(),
                e.operators,
                e.bytes.len(),
                ports(&e.inputs),
                ports(&e.outputs)
            );
            if e.multiplier_mismatches.0 > 0 {
                println!(
                    "note: {} of {} per-channel multipliers are not reproducible from a float32 \
                     filter scale; TFLite derives the nearest one",
                    e.multiplier_mismatches.0, e.multiplier_mismatches.1
                );
            }
        }
        Cmd::Inspect {
            model,
            json,
            bundle,
        } => {
            let blob = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let r = inspect(&blob).with_context(|| format!("{}", model.display()))?;
            let b = match &bundle {
                Some(p) => Some(choose::bundle_summary(&blob, p)?),
                None => None,
            };
            if json {
                let mut v = serde_json::to_value(&r)?;
                if let (Some((_, j)), Some(o)) = (b, v.as_object_mut()) {
                    o.insert("bundle".into(), j);
                }
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", r.to_text());
                if let Some((t, _)) = b {
                    print!("{t}");
                }
            }
        }
        Cmd::Run {
            model,
            input,
            output_dir,
            width,
            tasks,
            raw,
        } => {
            let blob = std::fs::read(&model)
                .with_context(|| format!("cannot read {}", model.display()))?;
            let m = edgeslim_runtime::Model::parse(&blob)
                .map_err(|e| anyhow!("{}: invalid model blob: {e}", model.display()))?;
            let widths = parse_widths(&m, &width)?;
            let mask = parse_tasks(&m, &tasks)?;
            let x = read_f32(&input).context("input")?;
            let outs = run_batch(&blob, &x, &widths, mask)?;
            std::fs::create_dir_all(&output_dir)
                .with_context(|| format!("cannot create {}", output_dir.display()))?;
            for o in outs {
                let path = output_dir.join(format!("{}.npy", o.name));
                if raw {
                    edgeslim_compiler::write_i8(&path, &o.raw)?;
                } else {
                    edgeslim_compiler::write_f32(&path, &o.float)?;
                }
                println!("{} {:?}", path.display(), o.float.shape);
            }
        }
    }
    Ok(())
}
