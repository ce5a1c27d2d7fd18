//! `edgeslim profile`: a latency table (`edgeslim.latency/1`, docs/latency-table.md).
//!
//! | module | concern |
//! |---|---|
//! | [`host`] | `--target host`: measured with the runtime on this machine |
//! | [`configs`] | the whole configurations a host profile times directly |
//! | [`log`] | the firmware `profile` program's log, parsed |
//! | [`device`] | `--from-log`: that log to a table, with the CPI/clock conversion stated |
//! | [`qemu`] | `--target cortex-m4-qemu`: build and run the `profile` program in QEMU, then convert |
//!
//! `--from-table` (a table measured elsewhere) is `crate::choose`'s, as for `search` and
//! `bundle`.

pub mod configs;
pub mod device;
pub mod host;
pub mod log;
pub mod npu;
pub mod qemu;

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgeslim_runtime::Model;

use crate::choose;
pub use configs::parse_config_count;
pub use host::{ProfileOptions, profile_host};

/// Options of `edgeslim profile`.
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The model blob.
    pub model: PathBuf,
    /// `host` measures here; `cortex-m4-qemu` builds the firmware's `profile` program with
    /// this model and runs it in QEMU; `ethos-u55-128` (and ethos-u55-32/64/256,
    /// ethos-u65-256/512) estimates each segment with Arm's Vela compiler; any other target (a
    /// board) needs `--from-log` or `--from-table`.
    #[arg(long, default_value = "host")]
    pub target: String,
    /// A latency table measured elsewhere, format edgeslim.latency/1.
    #[arg(long, conflicts_with = "from_log")]
    pub from_table: Option<PathBuf>,
    /// Ethos-U targets: the per-op latency table of the CPU beside the NPU (the Cortex-M55's,
    /// from `--from-log`), whose costs are added for the ops Vela leaves on the CPU.
    #[arg(long)]
    pub cpu_table: Option<PathBuf>,
    /// The firmware `profile` program's log (defmt text, from QEMU or a board): converted to
    /// a table with per-segment and per-op latencies.
    #[arg(long)]
    pub from_log: Option<PathBuf>,
    /// Device logs: the core clock in MHz. A board's ticks are cycles of it (required for a
    /// board's log); QEMU's instruction counts are timed at it (default 25, the mps2 clock).
    #[arg(long)]
    pub clock_mhz: Option<f64>,
    /// QEMU icount logs: cycles per instruction to time the instructions at (default 1).
    #[arg(long)]
    pub cpi: Option<f64>,
    /// `--target cortex-m4-qemu`: float32 .npy whose first sample the firmware runs (default:
    /// the deterministic input of host profiling).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write the latency table here (default: print JSON).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Host: timed runs per measurement.
    #[arg(long, default_value_t = 31)]
    pub reps: usize,
    /// Host: whole configurations (widths and running tasks) to time directly for the
    /// additive check: `all`, or at most this many spread over them.
    #[arg(long, default_value = "256", value_parser = parse_config_count)]
    pub configs: usize,
}

/// `edgeslim profile`.
pub fn profile(a: ProfileArgs) -> Result<()> {
    if npu::TARGETS.contains(&a.target.as_str()) && a.from_table.is_none() && a.from_log.is_none() {
        for (flag, set) in [
            ("--clock-mhz", a.clock_mhz.is_some()),
            ("--cpi", a.cpi.is_some()),
            ("--input", a.input.is_some()),
        ] {
            if set {
                bail!(
                    "{flag} does not apply to --target {} (Vela's estimate)",
                    a.target
                );
            }
        }
        let blob = choose::load_blob(&a.model)?;
        let model = Model::parse(&blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
        let hash = choose::model_hash(&model, &blob);
        let work = npu::work_dir(&hash, &a.target);
        let cpu = match &a.cpu_table {
            Some(p) => Some(edgeslim_search::LatencyTable::load(p)?),
            None => None,
        };
        let table = npu::latency_table(&model, &hash, &a.target, &work, cpu.as_ref())?;
        eprintln!("Vela's inputs and reports: {}", work.display());
        match &a.output {
            Some(p) => {
                table.save(p)?;
                println!("wrote {}", p.display());
            }
            None => println!("{}", table.to_json_string()?),
        }
        return Ok(());
    }
    if a.cpu_table.is_some() {
        bail!(
            "--cpu-table applies to the Ethos-U targets ({}), not {}",
            npu::TARGETS.join(", "),
            a.target
        );
    }
    let device = a.from_log.is_some() || (a.target == qemu::TARGET && a.from_table.is_none());
    if !device {
        for (flag, set) in [
            ("--clock-mhz", a.clock_mhz.is_some()),
            ("--cpi", a.cpi.is_some()),
            ("--input", a.input.is_some()),
        ] {
            if set {
                bail!(
                    "{flag} applies to device profiles (--from-log, --target {})",
                    qemu::TARGET
                );
            }
        }
        if a.target != "host" && a.from_table.is_none() {
            bail!(
                "target {:?} is measured on the device: pass the firmware `profile` program's \
                 log with --from-log (or a latency table with --from-table); `--target {}` runs \
                 it in QEMU itself (docs/latency-table.md)",
                a.target,
                qemu::TARGET
            );
        }
        return choose::profile(choose::ProfileArgs {
            model: a.model,
            target: a.target,
            from_table: a.from_table,
            output: a.output,
            reps: a.reps,
            configs: a.configs,
        });
    }
    let blob = choose::load_blob(&a.model)?;
    let model = Model::parse(&blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
    let hash = choose::model_hash(&model, &blob);
    let (text, name) = match &a.from_log {
        Some(path) => {
            if a.input.is_some() {
                bail!(
                    "--input applies to `--target {}` without --from-log",
                    qemu::TARGET
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            (text, path.display().to_string())
        }
        None => {
            let (text, kept) = qemu::run_profile(&blob, &model, a.input.as_deref(), true)?;
            eprintln!("the profile program's log: {}", kept.display());
            (text, kept.display().to_string())
        }
    };
    let log = log::ProfileLog::parse(&name, &text)?;
    device::check_model(&log, &name, &model, &hash)?;
    let conv = device::conversion(&log, &name, a.clock_mhz, a.cpi)?;
    if a.target == qemu::TARGET && conv.counter != edgeslim_search::latency::COUNTER_QEMU_ICOUNT {
        bail!(
            "--target {} but {name} was not recorded under QEMU -icount (its calibration loop \
             says a core clock): name the board as --target",
            qemu::TARGET
        );
    }
    let target = device::target_name(&a.target, &conv);
    let table =
        device::latency_table(&log, &target, conv).with_context(|| format!("converting {name}"))?;
    match &a.output {
        Some(p) => {
            table.save(p)?;
            print!("{}", device::summary(&table)?);
            println!("wrote {}", p.display());
        }
        None => println!("{}", table.to_json_string()?),
    }
    Ok(())
}
