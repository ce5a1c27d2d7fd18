//! A device's `profile` log to an `edgeslim.latency/1` table (`edgeslim profile --from-log`).
//!
//! **Which counter.** The log's calibration line is a loop of `n` instructions and the SysTick
//! ticks it took (`t`). Under QEMU with `-icount shift=0` virtual time advances 1 ns per
//! instruction and SysTick counts the mps2 boards' 25 MHz clock in it: `t = n / 40` (one tick
//! of slack for the phase), so a tick is 40 instructions (the program's `instructions_per_tick`
//! line, [`QEMU_INSTRUCTIONS_PER_TICK`] in logs without it). On a real
//! core SysTick counts core clock cycles, and no Cortex-M retires more than two instructions a
//! cycle: `t >= n / 2`. Anything else (QEMU without `-icount` runs SysTick on host time) is
//! refused, naming the line.
//!
//! **To microseconds** (stated in the table's `conversion`):
//! - QEMU icount: `latency_us = ticks * 40 * CPI / f_MHz`, instructions timed at `--cpi`
//!   cycles each (default 1) and `--clock-mhz` (default 25, the mps2 boards' clock). These
//!   rank configurations exactly; they are not a board's wall-clock time.
//! - A board: `latency_us = ticks / f_MHz` with the core clock `--clock-mhz` (required: the
//!   log does not know it). `--cpi` is refused: cycles already include it.
//!
//! **The table** ([`latency_table`]): the (first) encoder stage's latency at width `e` comes
//! from the first all-task run with `widths[0] = e`; any other segment `s` at width `d`, with
//! the segment it reads (the stage before, or for a decoder the last stage) at width `a`, from
//! the first all-task run with those two widths (`by_encoder_us[a][d]`; `latency_us` is the
//! mean over `a`); an op's entries come from the same runs as its segment's, so the ops of a
//! segment add up to it. Logs state the number of encoder stages (`encoder_stages <n>`; 1
//! without the line).
//! The overhead is the median over runs of what the observed run spent outside every segment;
//! every run is a measured configuration (its unobserved ticks).

use anyhow::{Result, anyhow, bail, ensure};
use edgeslim_runtime::Model;
use edgeslim_search::latency::{COUNTER_CYCLES, COUNTER_QEMU_ICOUNT, LATENCY_FORMAT, LATENCY_UNIT};
use edgeslim_search::{
    Calibration, Conversion, LatencyTable, MeasuredConfig, OpLatency, SegmentLatency,
};

use super::log::{ProfileLog, ProfileRun};
use crate::bench::m4::INSTRUCTIONS_PER_TICK as QEMU_INSTRUCTIONS_PER_TICK;

/// The clock of QEMU's mps2 boards, at which icount logs are timed by default.
pub const QEMU_CLOCK_MHZ: f64 = 25.0;

/// The CPI icount logs are timed at by default.
pub const QEMU_CPI: f64 = 1.0;

/// `25`, `1.5`: a number for a target name.
fn short(v: f64) -> String {
    format!("{v}")
}

/// How the log's ticks become microseconds, from its calibration line and the flags (module
/// documentation). `name` is the log's, for errors.
pub fn conversion(
    log: &ProfileLog,
    name: &str,
    clock_mhz: Option<f64>,
    cpi: Option<f64>,
) -> Result<Conversion> {
    for (flag, v) in [("--clock-mhz", clock_mhz), ("--cpi", cpi)] {
        if let Some(v) = v {
            ensure!(
                v.is_finite() && v > 0.0,
                "{flag} {v}: expected a number > 0"
            );
        }
    }
    let (n, t) = log.calibration;
    let calibration = Some(Calibration {
        instructions: n,
        ticks: t,
    });
    let ipt = log
        .instructions_per_tick
        .unwrap_or(QEMU_INSTRUCTIONS_PER_TICK)
        .max(1);
    if t.abs_diff(n / ipt) <= 1 {
        let clock = clock_mhz.unwrap_or(QEMU_CLOCK_MHZ);
        let cpi = cpi.unwrap_or(QEMU_CPI);
        return Ok(Conversion {
            counter: COUNTER_QEMU_ICOUNT.into(),
            instructions_per_tick: Some(ipt as f64),
            cycles_per_instruction: Some(cpi),
            clock_mhz: clock,
            us_per_tick: ipt as f64 * cpi / clock,
            calibration,
        });
    }
    ensure!(
        t >= n / 2,
        "{name}: the calibration loop of {n} instructions took {t} SysTick ticks: neither QEMU \
         with -icount shift=0 ({} ticks, 1 ns per instruction and {ipt} per tick) nor a core \
         clock ({} ticks or more); QEMU without -icount counts host time",
        n / ipt,
        n / 2
    );
    ensure!(
        cpi.is_none(),
        "{name} was recorded on a board (its calibration loop of {n} instructions took {t} \
         cycles): its ticks are cycles, so --cpi does not apply"
    );
    let clock = clock_mhz.ok_or_else(|| {
        anyhow!(
            "{name} was recorded on a board (its calibration loop of {n} instructions took {t} \
             ticks, {:.2} per instruction: core clock cycles): pass --clock-mhz with the core \
             clock SysTick counts",
            t as f64 / n.max(1) as f64
        )
    })?;
    Ok(Conversion {
        counter: COUNTER_CYCLES.into(),
        instructions_per_tick: None,
        cycles_per_instruction: None,
        clock_mhz: clock,
        us_per_tick: 1.0 / clock,
        calibration,
    })
}

/// The table's target: `<board>-qemu-icount-<f>mhz-cpi<c>` for icount logs (what follows
/// `-qemu` in `target` is replaced),
/// `<board>-<f>mhz` for a board's.
pub fn target_name(target: &str, c: &Conversion) -> String {
    if c.counter == COUNTER_QEMU_ICOUNT {
        // `cortex-m4`, `cortex-m4-qemu` and a full name made here all give `cortex-m4-...`.
        let base = target.split("-qemu").next().unwrap_or(target);
        format!(
            "{base}-qemu-icount-{}mhz-cpi{}",
            short(c.clock_mhz),
            short(c.cycles_per_instruction.unwrap_or(QEMU_CPI))
        )
    } else {
        format!("{target}-{}mhz", short(c.clock_mhz))
    }
}

/// Microseconds of `ticks`: the product first, one rounding (`ticks * 40 * 1 / 25`).
fn micros(c: &Conversion, ticks: u64) -> f64 {
    match (c.instructions_per_tick, c.cycles_per_instruction) {
        (Some(ipt), Some(cpi)) => ticks as f64 * ipt * cpi / c.clock_mhz,
        _ => ticks as f64 / c.clock_mhz,
    }
}

/// The log was recorded with this model: same hash, segments, widths, tasks and ops.
pub fn check_model(log: &ProfileLog, name: &str, model: &Model<'_>, hash: &str) -> Result<()> {
    ensure!(
        log.model_hash == hash,
        "{name} was recorded with model {}, this model is {hash}: profile the firmware built \
         with this model",
        log.model_hash
    );
    // The hash covers every byte; these name what differs should a log be edited by hand.
    ensure!(
        log.segments.len() == model.num_segments() && log.tasks.len() == model.num_tasks(),
        "{name}: {} segments and {} tasks, the model has {} and {}",
        log.segments.len(),
        log.tasks.len(),
        model.num_segments(),
        model.num_tasks()
    );
    for (s, (seg, widths)) in log.segments.iter().enumerate() {
        let info = model
            .segment(s)
            .ok_or_else(|| anyhow!("the model has no segment {s}"))?;
        let bits = |w: &[f32]| w.iter().map(|m| m.to_bits()).collect::<Vec<_>>();
        ensure!(
            info.name == seg && bits(info.multipliers()) == bits(widths),
            "{name}: segment {s} is {seg} {widths:?}, the model's is {} {:?}",
            info.name,
            info.multipliers()
        );
    }
    for (t, (task, s)) in log.tasks.iter().enumerate() {
        let info = model
            .task(t)
            .ok_or_else(|| anyhow!("the model has no task {t}"))?;
        ensure!(
            info.name == task && info.segment == *s,
            "{name}: task {t} is {task} in segment {s}, the model's is {} in segment {}",
            info.name,
            info.segment
        );
    }
    if !log.ops.is_empty() {
        ensure!(
            log.ops.len() == model.num_ops(),
            "{name}: {} ops, the model has {}",
            log.ops.len(),
            model.num_ops()
        );
        for (o, op) in log.ops.iter().enumerate() {
            let info = model
                .op(o)
                .ok_or_else(|| anyhow!("the model has no op {o}"))?;
            ensure!(
                info.kind.name() == op.kind && info.segment == op.segment,
                "{name}: op {o} is {} in segment {}, the model's is {} in segment {}",
                op.kind,
                op.segment,
                info.kind.name(),
                info.segment
            );
        }
    }
    Ok(())
}

/// The median of `v` (upper median for an even count, as the tables have always used).
fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The table of the log (module documentation) for target `target`.
pub fn latency_table(log: &ProfileLog, target: &str, conv: Conversion) -> Result<LatencyTable> {
    let all = log.all_tasks();
    let us = |ticks: u64| micros(&conv, ticks);
    let stages = log.encoder_stages.max(1);
    // The segment whose width each segment's cost also depends on: the stage before for a
    // stage (none for the first), the last stage for a decoder.
    let reads = |s: usize| -> Option<usize> {
        if s == 0 {
            None
        } else if s < stages {
            Some(s - 1)
        } else {
            Some(stages - 1)
        }
    };
    // The first all-task run with segment `r` (the one read) at `a` and `s` at `d`.
    let find = |s: usize, a: Option<(usize, usize)>, d: usize| -> Result<&ProfileRun> {
        log.runs
            .iter()
            .find(|run| {
                run.mask == all
                    && usize::from(run.widths[s]) == d
                    && a.is_none_or(|(r, a)| usize::from(run.widths[r]) == a)
            })
            .ok_or_else(|| {
                anyhow!(
                    "the log has no all-task run with segment {s} ({}) at width {d}{}",
                    log.segments[s].0,
                    a.map_or(String::new(), |(r, a)| format!(
                        " and segment {r} ({}) at width {a}",
                        log.segments[r].0
                    ))
                )
            })
    };
    // runs[s][a][d]: the run that times segment s at width d with the segment it reads at a
    // (one row for the first stage).
    let mut runs: Vec<Vec<Vec<&ProfileRun>>> = Vec::new();
    for (s, (_, widths)) in log.segments.iter().enumerate() {
        let rows = match reads(s) {
            None => vec![
                (0..widths.len())
                    .map(|d| find(s, None, d))
                    .collect::<Result<_>>()?,
            ],
            Some(r) => (0..log.segments[r].1.len())
                .map(|a| {
                    (0..widths.len())
                        .map(|d| find(s, Some((r, a)), d))
                        .collect::<Result<_>>()
                })
                .collect::<Result<_>>()?,
        };
        runs.push(rows);
    }
    // (latency_us, by_encoder_us) of a count `f` of the runs of segment s.
    let layout = |s: usize, f: &dyn Fn(&ProfileRun) -> u64| -> (Vec<f64>, Option<Vec<Vec<f64>>>) {
        let rows: Vec<Vec<f64>> = runs[s]
            .iter()
            .map(|row| row.iter().map(|r| us(f(r))).collect())
            .collect();
        if reads(s).is_none() {
            (rows[0].clone(), None)
        } else {
            let n = log.segments[s].1.len();
            let k = rows.len() as f64;
            let mean = (0..n)
                .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / k)
                .collect();
            (mean, Some(rows))
        }
    };
    let segments = log
        .segments
        .iter()
        .enumerate()
        .map(|(s, (name, widths))| {
            let (latency_us, by_encoder_us) = layout(s, &|r| r.segments[s]);
            SegmentLatency {
                name: name.clone(),
                widths: widths.iter().map(|&m| f64::from(m)).collect(),
                latency_us,
                spread_us: None,
                by_encoder_us,
            }
        })
        .collect();
    let ops = log
        .ops
        .iter()
        .enumerate()
        .map(|(o, op)| {
            let (latency_us, by_encoder_us) = layout(op.segment, &|r| r.ops[o]);
            OpLatency {
                index: o,
                kind: op.kind.clone(),
                segment: log.segments[op.segment].0.clone(),
                latency_us,
                by_encoder_us,
            }
        })
        .collect();
    let outside = log
        .runs
        .iter()
        .map(|r| r.observed.saturating_sub(r.segments.iter().sum()))
        .collect();
    let configs = log
        .runs
        .iter()
        .map(|r| {
            ensure!(r.total > 0, "line {}: a run of 0 ticks", r.line);
            Ok(MeasuredConfig {
                widths: r.widths.clone(),
                tasks: log
                    .decoders(r.mask)
                    .iter()
                    .map(|&s| log.segments[s].0.clone())
                    .collect(),
                latency_us: us(r.total),
            })
        })
        .collect::<Result<_>>()?;
    let table = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: log.model_hash.clone(),
        target: target.to_owned(),
        unit: LATENCY_UNIT.into(),
        overhead_us: us(median(outside)),
        segments,
        encoder_stages: stages,
        configs,
        conversion: Some(conv),
        ops,
    };
    if let Err(e) = table.validate() {
        bail!("the table converted from the log is invalid: {e}");
    }
    Ok(table)
}

/// A few lines for people: the conversion, the segments, the additive check, the ops at the
/// widest configuration.
pub fn summary(t: &LatencyTable) -> Result<String> {
    use std::fmt::Write;
    let mut s = String::new();
    if let Some(c) = &t.conversion {
        let how = match (c.instructions_per_tick, c.cycles_per_instruction) {
            (Some(ipt), Some(cpi)) => format!(
                "QEMU icount: a tick is {ipt} instructions, timed at CPI {cpi} and {} MHz",
                c.clock_mhz
            ),
            _ => format!("a tick is a cycle of the {} MHz core clock", c.clock_mhz),
        };
        let _ = writeln!(s, "conversion: {how}: {} us per tick", c.us_per_tick);
    }
    let _ = writeln!(
        s,
        "latency on {} (us), overhead {:.2}",
        t.target, t.overhead_us
    );
    for seg in &t.segments {
        let _ = write!(s, "{:>12} |", seg.name);
        for (w, l) in seg.widths.iter().zip(&seg.latency_us) {
            let _ = write!(s, " {w:.2}: {l:8.2}");
        }
        let _ = writeln!(s);
    }
    if let Some(c) = t.check_additive()? {
        let _ = writeln!(
            s,
            "additive model vs {} directly timed configs: median error {:.1}%, worst {:.1}%",
            c.configs,
            c.median_rel_error * 100.0,
            c.worst_rel_error * 100.0
        );
    }
    if !t.ops.is_empty() {
        let _ = writeln!(s, "per op at the widest widths (us):");
        for op in &t.ops {
            let widest = match &op.by_encoder_us {
                Some(rows) => rows.last().and_then(|r| r.last()),
                None => op.latency_us.last(),
            };
            let _ = writeln!(
                s,
                "  {:>4} {:<16} {:<12} {:10.2}",
                op.index,
                op.kind,
                op.segment,
                widest.copied().unwrap_or(0.0)
            );
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log of `log.rs`'s tests.
    fn log() -> ProfileLog {
        ProfileLog::parse("t.log", super::super::log::tests::LOG).unwrap()
    }

    #[test]
    fn icount_log_at_the_default_clock() {
        let p = log();
        let c = conversion(&p, "t.log", None, None).unwrap();
        assert_eq!(c.counter, COUNTER_QEMU_ICOUNT);
        assert_eq!(
            target_name("cortex-m4", &c),
            "cortex-m4-qemu-icount-25mhz-cpi1"
        );
        assert_eq!(
            target_name("cortex-m4-qemu", &c),
            "cortex-m4-qemu-icount-25mhz-cpi1"
        );
        let full = target_name("cortex-m4", &c);
        assert_eq!(target_name(&full, &c), full);
        let t = latency_table(&p, "x", c.clone()).unwrap();
        // Every latency is a whole number of ticks times 40 instructions at 25 MHz.
        let ticks = |us: f64| us * 25.0 / 40.0;
        for v in t.segments.iter().flat_map(|s| &s.latency_us) {
            assert_eq!(ticks(*v), ticks(*v).round(), "{v}");
        }
        // The encoder at width 0 is the first all-task run's segment 0.
        assert_eq!(
            ticks(t.segments[0].latency_us[0]),
            p.runs[0].segments[0] as f64
        );
        // Ops add up to their segments (validated), here checked again by hand.
        let enc: f64 = t
            .ops
            .iter()
            .filter(|o| o.segment == "encoder")
            .map(|o| o.latency_us[1])
            .sum();
        assert_eq!(enc, t.segments[0].latency_us[1]);
        assert_eq!(t.configs.len(), p.runs.len());
        assert_eq!(t.configs[4].tasks, ["digit"]);
        // A CPI and a clock scale every entry by cpi * 25 / f.
        let c2 = conversion(&p, "t.log", Some(100.0), Some(2.0)).unwrap();
        assert_eq!(
            target_name("cortex-m4", &c2),
            "cortex-m4-qemu-icount-100mhz-cpi2"
        );
        let t2 = latency_table(&p, "x", c2).unwrap();
        for (a, b) in t.segments.iter().zip(&t2.segments) {
            for (x, y) in a.latency_us.iter().zip(&b.latency_us) {
                assert!((y - x * 2.0 * 25.0 / 100.0).abs() < 1e-9, "{x} {y}");
            }
        }
    }

    #[test]
    fn board_logs_need_the_clock() {
        let mut p = log();
        // 2,000,000 instructions in 3,000,000 cycles: a board.
        p.calibration = (2_000_000, 3_000_000);
        let e = conversion(&p, "b.log", None, None).unwrap_err().to_string();
        assert!(e.contains("--clock-mhz") && e.contains("b.log"), "{e}");
        let e = conversion(&p, "b.log", Some(64.0), Some(1.2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--cpi"), "{e}");
        let c = conversion(&p, "b.log", Some(64.0), None).unwrap();
        assert_eq!(c.counter, COUNTER_CYCLES);
        assert_eq!(target_name("stm32f4", &c), "stm32f4-64mhz");
        let t = latency_table(&p, "stm32f4-64mhz", c).unwrap();
        assert_eq!(
            t.segments[0].latency_us[0],
            p.runs[0].segments[0] as f64 / 64.0
        );
        // Host time: fewer ticks than any core could take.
        p.calibration = (2_000_000, 1234);
        let e = conversion(&p, "q.log", None, None).unwrap_err().to_string();
        assert!(e.contains("-icount"), "{e}");
        assert!(conversion(&p, "q.log", Some(-1.0), None).is_err());
    }
}
