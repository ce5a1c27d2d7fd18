//! `edgeslim profile MODEL --target ethos-u55-128` (and the other Ethos-U configurations):
//! every segment at every width exported as TFLite (`edgeslim-tflite`) and compiled by Arm's
//! Vela compiler (`ethos-u-vela`, the `vela` command), whose performance estimate per network
//! becomes the segment's latency. Estimates, not measurements: see docs/tflite.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use edgeslim_runtime::{Model, TaskMask, WidthConfig};
use edgeslim_search::latency::{
    COUNTER_CYCLES, Conversion, LATENCY_FORMAT, LATENCY_UNIT, LatencyTable, SegmentLatency,
};
use edgeslim_tflite::{ExportOptions, Part, export};

/// The Ethos-U configurations Vela compiles for (its `--accelerator-config`).
pub const TARGETS: &[&str] = &[
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
];

/// One Vela compilation: its estimate, the clock it assumes, the operators it leaves on the CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Estimated NPU cycles of one inference (`cycles_total`; CPU operators not included).
    pub cycles: f64,
    /// The core clock of the system configuration, Hz.
    pub clock_hz: f64,
    /// Output tensor names of the TFLite operators left on the CPU
    /// (`--show-cpu-operations`).
    pub cpu_ops: Vec<String>,
}

/// The value of `column` in Vela's one-row summary CSV (`text`); the network name column is
/// quoted and may hold commas.
fn csv_field(text: &str, column: &str) -> Option<String> {
    fn split(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for ch in line.chars() {
            match ch {
                '"' => quoted = !quoted,
                ',' if !quoted => out.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        out.push(cur);
        out
    }
    let mut lines = text.lines();
    let header = split(lines.next()?);
    let row = split(lines.next()?);
    let k = header.iter().position(|h| h.trim() == column)?;
    row.get(k).map(|v| v.trim().to_string())
}

/// Parse Vela's summary CSV and its console report (`CPU operators = N` and, with
/// `--show-cpu-operations`, one `CPU: <type> = <output tensor> (...)` line per such operator).
pub fn parse_estimate(csv: &str, stdout: &str, what: &str) -> Result<Estimate> {
    let num = |col: &str| -> Result<f64> {
        let v = csv_field(csv, col).ok_or_else(|| anyhow!("{what}: no {col} in Vela's summary"))?;
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| anyhow!("{what}: Vela's {col} is {v:?}, not a number >= 0"))
    };
    let cpu = cpu_operators(stdout, what)?;
    let cpu_ops: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CPU: "))
        .filter_map(|l| l.split_once(" = ").map(|(_, r)| r))
        .map(|r| r.rsplit_once(" (").map_or(r, |(n, _)| n).trim().to_string())
        .collect();
    if cpu_ops.len() != cpu {
        bail!(
            "{what}: Vela reports {cpu} CPU operator(s) but lists {}",
            cpu_ops.len()
        );
    }
    let clock_hz = num("core_clock")?;
    if clock_hz <= 0.0 {
        bail!("{what}: Vela's core_clock is 0");
    }
    Ok(Estimate {
        cycles: num("cycles_total")?,
        clock_hz,
        cpu_ops,
    })
}

/// The blob op a TFLite operator Vela left on the CPU comes from: the exporter names an
/// operator's output after the blob op's output tensor, or that name and a `/` suffix for the
/// operators it adds (a table op's `CAST`, `ADD`, `GATHER`). The longest match wins.
pub fn op_of_tflite_tensor(model: &Model<'_>, name: &str) -> Option<usize> {
    (0..model.num_ops())
        .filter_map(|i| {
            let out = model.tensor(model.op(i)?.output)?.name;
            let hit = name == out
                || name
                    .strip_prefix(out)
                    .is_some_and(|rest| rest.starts_with('/'));
            hit.then_some((out.len(), i))
        })
        .max()
        .map(|(_, i)| i)
}

/// The CPU cost of the blob ops behind `cpu_ops` at encoder width `e` and segment width `d`, from
/// `table` (per-op latencies, e.g. the Cortex-M55's from `edgeslim profile --from-log`): each
/// blob op once, however many of its TFLite operators stayed on the CPU. Returns the cost and
/// the ops.
pub fn cpu_cost(
    model: &Model<'_>,
    table: &LatencyTable,
    cpu_ops: &[String],
    e: usize,
    d: usize,
    what: &str,
) -> Result<(f64, Vec<usize>)> {
    let mut ops: Vec<usize> = cpu_ops
        .iter()
        .map(|n| {
            op_of_tflite_tensor(model, n).ok_or_else(|| {
                anyhow!("{what}: Vela's CPU operator {n:?} matches no op of the model")
            })
        })
        .collect::<Result<_>>()?;
    ops.sort_unstable();
    ops.dedup();
    let mut us = 0.0;
    for &i in &ops {
        let row = table.ops.iter().find(|o| o.index == i).ok_or_else(|| {
            anyhow!(
                "{what}: the CPU table ({}) has no latency for op {i}, which Vela leaves on the CPU",
                table.target
            )
        })?;
        let v = match &row.by_encoder_us {
            Some(rows) => rows.get(e).and_then(|r| r.get(d)),
            None => row.latency_us.get(d),
        };
        us += v.copied().ok_or_else(|| {
            anyhow!("{what}: the CPU table has no latency for op {i} at widths ({e}, {d})")
        })?;
    }
    Ok((us, ops))
}

/// The `vela` command (`EDGESLIM_VELA`, default `vela`), checked to run, and the version it
/// reports.
pub(crate) fn vela() -> Result<(String, String)> {
    let v = std::env::var("EDGESLIM_VELA").unwrap_or_else(|_| "vela".into());
    match Command::new(&v).arg("--version").output() {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Ok((v, version))
        }
        _ => bail!(
            "Vela not found ({v} --version fails): pip install ethos-u-vela, or set \
             EDGESLIM_VELA to its command"
        ),
    }
}

/// The `N` of Vela's `CPU operators = N` report line.
pub(crate) fn cpu_operators(stdout: &str, what: &str) -> Result<usize> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("CPU operators = "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| anyhow!("{what}: Vela's report has no 'CPU operators' line"))
}

/// Run Vela on `tflite` for `target` with its outputs in `dir` (and `extra` arguments); its
/// console report.
pub(crate) fn run_vela(
    vela: &str,
    tflite: &Path,
    target: &str,
    dir: &Path,
    extra: &[&str],
) -> Result<String> {
    let out = Command::new(vela)
        .arg("--accelerator-config")
        .arg(target)
        .args(extra)
        .arg("--output-dir")
        .arg(dir)
        .arg(tflite)
        .output()
        .with_context(|| format!("cannot run {vela}"))?;
    if !out.status.success() {
        bail!(
            "{}: Vela failed: {}",
            tflite.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Compile `tflite` with Vela for `target` in `dir` and read its estimate.
fn compile(vela: &str, tflite: &Path, target: &str, dir: &Path) -> Result<Estimate> {
    let stdout = run_vela(vela, tflite, target, dir, &["--show-cpu-operations"])?;
    let what = tflite.display().to_string();
    let stem = tflite
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let csv = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stem}_summary_")) && n.ends_with(".csv"))
        })
        .ok_or_else(|| anyhow!("{what}: Vela wrote no summary CSV in {}", dir.display()))?;
    let text = std::fs::read_to_string(&csv)?;
    parse_estimate(&text, &stdout, &what)
}

/// The tasks computed by segment `s` (all tasks for the encoder).
pub(crate) fn tasks_of(model: &Model<'_>, s: usize) -> TaskMask {
    if s == 0 {
        return TaskMask::all(model);
    }
    let mut m = TaskMask(0);
    for t in 0..model.num_tasks() {
        if model.task_segment(t) == s {
            m = m.with(t);
        }
    }
    m
}

/// The latency table of `model` on `target`: every segment at every width (a decoder at every
/// encoder width too), each one network compiled by Vela. A segment with operators Vela leaves
/// on the CPU adds their cost from `cpu` (a per-op table of the CPU beside the NPU, the
/// Cortex-M55's); without one it is an error. Each compilation with CPU operators is printed.
pub fn latency_table(
    model: &Model<'_>,
    hash: &str,
    target: &str,
    work: &Path,
    cpu: Option<&LatencyTable>,
) -> Result<LatencyTable> {
    if let Some(c) = cpu {
        if c.model_hash != hash {
            bail!("the CPU table is for model {}, not {hash}", c.model_hash);
        }
        if c.ops.is_empty() {
            bail!(
                "the CPU table ({}) has no per-op latencies: profile the CPU with per-op timing",
                c.target
            );
        }
    }
    let (vela, _) = vela()?;
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let n_seg = model.num_segments();
    let n_enc = model.num_widths(0);
    let total: usize = n_enc
        + (1..n_seg)
            .map(|s| n_enc * model.num_widths(s))
            .sum::<usize>();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_message(format!("Vela {target}"));
    let mut clock: Option<f64> = None;
    let mut run = |s: usize, e: usize, d: usize| -> Result<f64> {
        let mut w = WidthConfig::full(model);
        w.set(0, e as u8).map_err(|err| anyhow!("{err}"))?;
        if s > 0 {
            w.set(s, d as u8).map_err(|err| anyhow!("{err}"))?;
        }
        let opts = ExportOptions {
            widths: w,
            tasks: tasks_of(model, s),
            part: Part::Segment(s),
        };
        let x = export(model, &opts).with_context(|| format!("segment {s}: TFLite export"))?;
        let file = work.join(format!("seg{s}_e{e}_w{d}.tflite"));
        std::fs::write(&file, &x.bytes)?;
        let est = compile(&vela, &file, target, work)?;
        if clock.is_some_and(|c| c != est.clock_hz) {
            bail!("Vela changed its clock between compilations");
        }
        clock = Some(est.clock_hz);
        bar.inc(1);
        let npu_us = est.cycles / est.clock_hz * 1e6;
        if est.cpu_ops.is_empty() {
            return Ok(npu_us);
        }
        let what = format!("segment {s} at encoder width {e}, width {d}");
        let Some(table) = cpu else {
            bail!(
                "{what}: Vela leaves {} operator(s) on the CPU ({}); their cost is not in its \
                 estimate: pass --cpu-table with the per-op table of the CPU beside the NPU \
                 (the Cortex-M55's, from `edgeslim profile --from-log`)",
                est.cpu_ops.len(),
                est.cpu_ops.join(", ")
            );
        };
        let (cpu_us, ops) = cpu_cost(model, table, &est.cpu_ops, e, d, &what)?;
        bar.suspend(|| {
            eprintln!(
                "{what}: NPU {npu_us:.2} us + CPU {cpu_us:.2} us (ops {ops:?} on {})",
                table.target
            );
        });
        Ok(npu_us + cpu_us)
    };
    let mut segments = Vec::with_capacity(n_seg);
    let enc: Vec<f64> = (0..n_enc).map(|e| run(0, e, e)).collect::<Result<_>>()?;
    let seg_info = |s: usize| -> Result<(String, Vec<f64>)> {
        let i = model
            .segment(s)
            .ok_or_else(|| anyhow!("segment {s} unreadable"))?;
        Ok((
            i.name.to_string(),
            i.multipliers().iter().map(|&m| m as f64).collect(),
        ))
    };
    let (name, widths) = seg_info(0)?;
    segments.push(SegmentLatency {
        name,
        widths,
        latency_us: enc,
        spread_us: None,
        by_encoder_us: None,
    });
    for s in 1..n_seg {
        let nd = model.num_widths(s);
        let mut rows = Vec::with_capacity(n_enc);
        for e in 0..n_enc {
            rows.push(
                (0..nd)
                    .map(|d| run(s, e, d))
                    .collect::<Result<Vec<f64>>>()?,
            );
        }
        let mean = (0..nd)
            .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / n_enc as f64)
            .collect();
        let (name, widths) = seg_info(s)?;
        segments.push(SegmentLatency {
            name,
            widths,
            latency_us: mean,
            spread_us: None,
            by_encoder_us: Some(rows),
        });
    }
    bar.finish_and_clear();
    let clock_mhz = clock.unwrap_or(1e6) / 1e6;
    let table = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: hash.into(),
        target: target.into(),
        unit: LATENCY_UNIT.into(),
        overhead_us: 0.0,
        segments,
        encoder_stages: 1,
        configs: Vec::new(),
        conversion: Some(Conversion {
            counter: COUNTER_CYCLES.into(),
            instructions_per_tick: None,
            cycles_per_instruction: None,
            clock_mhz,
            us_per_tick: 1.0 / clock_mhz,
            calibration: None,
        }),
        ops: Vec::new(),
    };
    table.validate()?;
    Ok(table)
}

/// Where the exported segments and Vela's outputs go.
pub fn work_dir(hash: &str, target: &str) -> PathBuf {
    std::env::temp_dir()
        .join("edgeslim-vela")
        .join(format!("{}-{target}", hash.replace(['/', ':'], "_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vela_summary_and_its_cpu_operators() {
        let csv = "experiment,network,core_clock,inference_time,cycles_total\n\
                   default,\"a,b\",500000000.0,0.0007,363781\n";
        let e = parse_estimate(csv, "CPU operators = 0 (0.0%)\n", "x").expect("parses");
        assert_eq!(e.cycles, 363781.0);
        assert_eq!(e.clock_hz, 5e8);
        assert!(e.cpu_ops.is_empty());
        let listed = "CPU operators = 2 (40.0%)\n   CPU: Passthrough = s/as_int32 (outputs [1, \
                      8, 8, 8])\n   CPU: Passthrough = s (outputs [1, 8, 8, 8])\nNPU operators = 3\n";
        let e = parse_estimate(csv, listed, "x").expect("parses");
        assert_eq!(e.cpu_ops, vec!["s/as_int32".to_string(), "s".to_string()]);
        let err = parse_estimate(csv, "CPU operators = 3 (7.1%)\n", "x").unwrap_err();
        assert!(err.to_string().contains("lists 0"), "{err}");
        assert!(parse_estimate(csv, "", "x").is_err());
        assert!(parse_estimate("a,b\n1,2\n", "CPU operators = 0", "x").is_err());
    }
}
