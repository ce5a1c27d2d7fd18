//! `edgeslim profile --target host`: a latency table measured with the runtime on this machine.
//!
//! **What is timed.** Per-op time comes from the interpreter's [`Observer`] hooks. For every
//! encoder width `e` and decoder width index `d`, one *pair run* executes the model with every
//! task, every decoder at `d`; a segment's time in that run is the sum of its ops' times. The
//! encoder's latency at `e` is the median over `d` of its pair estimates; a decoder's latency
//! is kept per (encoder width, decoder width) (`by_encoder_us`: its first layer reads the
//! encoder's active channels, so its cost scales with both) and as the mean over encoder
//! widths (`latency_us`). Whole configurations — width configuration *and* set of running
//! decoders — are timed directly, without hooks; the fixed per-inference overhead is the median
//! of (direct - sum of its segments' latencies) over them, and the table carries these direct
//! measurements so that the additive model can be checked (`LatencyTable::check_additive`).
//!
//! A model without decoders (a plain single-segment network) is profiled the same way with
//! one decoder width: a pair run per encoder width, and one whole configuration per encoder
//! width (every task runs), so the table has the encoder's latency per width and the overhead.
//!
//! **Robust to a loaded machine.** A shared host runs other processes; four measures keep
//! their effect out of the table:
//! - *On-CPU time.* On Linux a whole run is timed as wall time minus the run-queue delay the
//!   thread accrued in it (`/proc/thread-self/schedstat`, field 2): time during which another
//!   process held the core is not the model's. A run with hooks reads only the clock between
//!   ops (a system call there would slow the next op a little and bias short segments up);
//!   when its delay grew, it is run again with the delay read around every op, so each op is
//!   on-CPU time too. Elsewhere, or when the kernel keeps no scheduler statistics, wall time.
//! - *Rounds.* Each of `reps` rounds runs every sampled configuration once without hooks and
//!   every pair run three times with hooks (between thirds of the configurations; pair runs
//!   are few and every prediction at an encoder width shares them), so a drift of load shifts
//!   all of them alike.
//! - *Medians.* An estimate is the median of its samples (`reps` per block of rounds for a
//!   configuration, `3 * reps` for a pair run).
//! - *Re-measurement.* A configuration whose additive prediction is off by more than
//!   [`ProfileOptions::remeasure_above`] is measured again, in a fresh block of `reps`
//!   rounds, together with what its prediction is made of (every pair run at its encoder
//!   width) and with every other configuration at that encoder width (whose predictions
//!   share those pair runs). An estimate is then the median of all its samples, old and new:
//!   neither the newest block alone nor the lowest block median, which would favour whatever
//!   was measured last. Up to [`ProfileOptions::remeasure_passes`] passes; [`ProfileStats`]
//!   says how many configurations were found off and re-measured, and what the check said
//!   before. A configuration that stays off is reported as it is.

use std::fs::File;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use edgeslim_runtime::width::encoder;
use edgeslim_runtime::{Input, Interpreter, Model, Observer, OpInfo, TaskMask, WidthConfig};
use edgeslim_search::config::{encoder_config_of, stage_width};
use edgeslim_search::{LatencyTable, MeasuredConfig, SegmentLatency};
use indicatif::{ProgressBar, ProgressStyle};

use super::configs::{Config, config_space};

/// Times every pair run goes per round (see [`Profiler::block`]).
const PAIR_PASSES: usize = 3;

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct ProfileOptions {
    /// Untimed passes over the pair runs before measuring (they run every op at every width).
    pub warmup: usize,
    /// Timed rounds per measurement block (each estimate is a median over them).
    pub reps: usize,
    /// Most whole configurations to time directly: all of them when the space (every width
    /// configuration with every non-empty set of running decoders) is smaller, otherwise a
    /// deterministic spread over it. `usize::MAX` times every one.
    pub max_configs: usize,
    /// Relative additive-model error above which a configuration is measured again.
    pub remeasure_above: f64,
    /// Most re-measurement passes.
    pub remeasure_passes: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            warmup: 3,
            reps: 31,
            max_configs: 256,
            remeasure_above: 0.10,
            remeasure_passes: 3,
        }
    }
}

/// How a profile went: what was measured and how often it had to be repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileStats {
    /// Whole configurations timed directly.
    pub configs: usize,
    /// Whether times are on-CPU time (wall minus run-queue delay) or plain wall time.
    pub on_cpu: bool,
    /// Share of timed runs during which another process held the core.
    pub preempted_share: f64,
    /// Distinct configurations found off by more than the re-measurement threshold (each was
    /// re-measured along with the rest of its encoder width).
    pub remeasured: usize,
    /// Re-measurement passes run.
    pub passes: usize,
    /// Median and worst relative error of the additive model before any re-measurement.
    pub first_pass: (f64, f64),
}

impl ProfileStats {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "timed {} configurations directly ({}; {:.1}% of runs interrupted); first pass: median error {:.1}%, worst {:.1}%; re-measured {} in {} pass(es)",
            self.configs,
            if self.on_cpu {
                "on-CPU time"
            } else {
                "wall time"
            },
            self.preempted_share * 100.0,
            self.first_pass.0 * 100.0,
            self.first_pass.1 * 100.0,
            self.remeasured,
            self.passes
        )
    }
}

/// The thread's accumulated run-queue delay: time it was runnable but another task held the
/// core. Linux only (`/proc/thread-self/schedstat`); elsewhere always 0.
struct RunQueueDelay {
    file: Option<File>,
    /// Runs timed, and how many of them another process interrupted.
    runs: u64,
    preempted: u64,
}

impl RunQueueDelay {
    fn open() -> Self {
        let mut me = RunQueueDelay {
            file: File::open("/proc/thread-self/schedstat").ok(),
            runs: 0,
            preempted: 0,
        };
        // A thread that is running has been scheduled at least once: a count of 0 means the
        // kernel does not keep these statistics, and the delay would always read 0.
        if me.read().is_none_or(|(_, slices)| slices == 0) {
            me.file = None;
        }
        me
    }

    /// (run-queue delay in ns, times scheduled): fields 2 and 3 of the file.
    #[cfg(unix)]
    fn read(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 96];
        let n = self.file.as_ref()?.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(buf.get(..n)?).ok()?;
        let mut fields = text.split_ascii_whitespace().skip(1);
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    }

    #[cfg(not(unix))]
    fn read(&self) -> Option<(u64, u64)> {
        None
    }

    fn now(&self) -> u64 {
        self.read().map_or(0, |(delay, _)| delay)
    }

    /// Count one timed run whose delay readings were `d0`, `d1`; its run-queue delay.
    fn run_delay(&mut self, d0: u64, d1: u64) -> u64 {
        let delay = d1.saturating_sub(d0);
        self.runs += 1;
        if delay > 0 {
            self.preempted += 1;
        }
        delay
    }
}

/// Sums per-op time into per-segment nanoseconds. Plain, it reads only the monotonic clock
/// around each op (no system call between ops, which would slow the next op down a little
/// and bias short segments up); careful, it also reads the run-queue delay around each op and
/// counts on-CPU time.
struct SegmentTimer<'c> {
    clock: &'c mut RunQueueDelay,
    careful: bool,
    start: Option<(Instant, u64)>,
    ns: Vec<u64>,
}

impl Observer for SegmentTimer<'_> {
    fn op_start(&mut self, _index: usize, _op: &OpInfo) {
        // Delay first, clock second: reading the delay stays outside the timed interval.
        let d0 = if self.careful { self.clock.now() } else { 0 };
        self.start = Some((Instant::now(), d0));
    }
    fn op_end(&mut self, _index: usize, op: &OpInfo) {
        let t1 = Instant::now();
        if let Some((t0, d0)) = self.start.take() {
            let wall = (t1 - t0).as_nanos() as u64;
            let ns = if self.careful {
                wall.saturating_sub(self.clock.now().saturating_sub(d0))
            } else {
                wall
            };
            if let Some(slot) = self.ns.get_mut(op.segment) {
                *slot += ns;
            }
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn iqr(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.len() < 4 {
        return 0.0;
    }
    v[v.len() * 3 / 4] - v[v.len() / 4]
}

/// A deterministic input in the model's float range.
pub(super) fn probe_input(model: &Model<'_>) -> Vec<f32> {
    (0..model.input_len())
        .map(|i| ((i * 37 % 101) as f32) / 101.0)
        .collect()
}

/// Every sample an estimate has had, over all its blocks; the estimate is their median.
#[derive(Debug, Clone, Default)]
struct Estimate {
    samples: Vec<f64>,
}

impl Estimate {
    fn push(&mut self, samples: &[f64]) {
        self.samples.extend_from_slice(samples);
    }
    /// (median, interquartile range).
    fn get(&self) -> (f64, f64) {
        let mut v = self.samples.clone();
        (median(&mut v), iqr(&mut v))
    }
}

struct Profiler<'m, 'a> {
    model: &'m Model<'m>,
    interp: Interpreter<'m, 'a>,
    input: Vec<f32>,
    clock: RunQueueDelay,
    n_seg: usize,
    /// Pair runs: (encoder width, decoder width, widths).
    pairs: Vec<(usize, usize, WidthConfig)>,
    /// Direct configurations: widths and task mask.
    direct: Vec<(WidthConfig, TaskMask)>,
    /// pair_est[p][s]: segment `s` in pair run `p`.
    pair_est: Vec<Vec<Estimate>>,
    direct_est: Vec<Estimate>,
}

impl Profiler<'_, '_> {
    /// A run with hooks: on-CPU microseconds per segment. A plain run that another process
    /// interrupted (its run-queue delay grew) is run again carefully (see [`SegmentTimer`]).
    fn time_pair(&mut self, p: usize) -> Result<Vec<f64>> {
        let d0 = self.clock.now();
        let mut ns = self.hooked(p, false)?;
        let d1 = self.clock.now();
        if self.clock.run_delay(d0, d1) > 0 {
            ns = self.hooked(p, true)?;
        }
        Ok(ns.iter().map(|&ns| ns as f64 / 1000.0).collect())
    }

    fn hooked(&mut self, p: usize, careful: bool) -> Result<Vec<u64>> {
        let (_, _, w) = &self.pairs[p];
        let mut timer = SegmentTimer {
            clock: &mut self.clock,
            careful,
            start: None,
            ns: vec![0; self.n_seg],
        };
        let tasks = TaskMask::all(self.model);
        self.interp
            .run_observed(Input::F32(&self.input), w, tasks, &mut timer)?;
        Ok(timer.ns)
    }

    /// A run without hooks: on-CPU microseconds.
    fn time_direct(&mut self, c: usize) -> Result<f64> {
        let (w, tasks) = &self.direct[c];
        let d0 = self.clock.now();
        let t0 = Instant::now();
        self.interp.run(Input::F32(&self.input), w, *tasks)?;
        let wall = t0.elapsed().as_nanos() as u64;
        let d1 = self.clock.now();
        Ok(wall.saturating_sub(self.clock.run_delay(d0, d1)) as f64 / 1000.0)
    }

    /// One block of `rounds` rounds over `pairs` and `configs`; a new block median each.
    fn block(
        &mut self,
        pairs: &[usize],
        configs: &[usize],
        rounds: usize,
        bar: &ProgressBar,
    ) -> Result<()> {
        let mut ps = vec![vec![Vec::with_capacity(rounds); self.n_seg]; pairs.len()];
        let mut cs = vec![Vec::with_capacity(rounds); configs.len()];
        // The pair runs go PAIR_PASSES times per round, spread between chunks of the
        // configurations: they are few, and every prediction at an encoder width shares them.
        let chunk = configs.len().div_ceil(PAIR_PASSES).max(1);
        for _ in 0..rounds {
            for k in 0..PAIR_PASSES {
                for (i, &p) in pairs.iter().enumerate() {
                    for (s, us) in self.time_pair(p)?.into_iter().enumerate() {
                        ps[i][s].push(us);
                    }
                }
                for (i, &c) in configs.iter().enumerate().skip(k * chunk).take(chunk) {
                    let us = self.time_direct(c)?;
                    cs[i].push(us);
                }
            }
            bar.inc(1);
        }
        for (i, &p) in pairs.iter().enumerate() {
            for (s, v) in ps[i].iter().enumerate() {
                self.pair_est[p][s].push(v);
            }
        }
        for (i, &c) in configs.iter().enumerate() {
            self.direct_est[c].push(&cs[i]);
        }
        Ok(())
    }
}

/// Measure the latency table of `model` on this machine (method in the module documentation).
pub fn profile_host(
    model: &Model<'_>,
    blob_hash: &str,
    opts: ProfileOptions,
    progress: bool,
) -> Result<LatencyTable> {
    let (table, stats) = profile_host_stats(model, blob_hash, opts, progress)?;
    if progress {
        eprintln!("{}", stats.summary());
    }
    Ok(table)
}

/// [`profile_host`], also returning how the measurement went.
pub fn profile_host_stats(
    model: &Model<'_>,
    blob_hash: &str,
    opts: ProfileOptions,
    progress: bool,
) -> Result<(LatencyTable, ProfileStats)> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let n_seg = model.num_segments();
    if n_seg == 0 {
        bail!("the model has no segment to profile");
    }
    let stages = model.num_encoder_segments().max(1);
    let counts: Vec<usize> = (0..stages).map(|k| model.num_widths(k)).collect();
    let n_dec = (stages..n_seg)
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .max()
        .unwrap_or(1);
    // Pair runs: every encoder configuration, or for an encoder of many stages a set covering
    // every (stage before, stage) pair of widths, each with the decoders at every width index.
    let pairs: Vec<(usize, usize, WidthConfig)> = encoder_cover(&counts)
        .into_iter()
        .flat_map(|e| (0..n_dec).map(move |d| (e, d)))
        .map(|(e, d)| {
            let mut w = WidthConfig::full(model);
            for k in 0..stages {
                w.set(k, stage_width(&counts, e, k) as u8)?;
            }
            for s in stages..n_seg {
                let nw = model.segment(s).map_or(1, |g| g.n_widths);
                w.set(s, d.min(nw - 1) as u8)?;
            }
            Ok((e, d, w))
        })
        .collect::<Result<_>>()?;
    let space = config_space(model, opts.max_configs)?;
    let direct = space
        .iter()
        .map(|c| {
            // The running decoders' tasks, and the encoder's own (a single-segment model's
            // outputs come from the encoder).
            let mut mask = TaskMask(0);
            for t in 0..model.num_tasks() {
                if model
                    .task(t)
                    .is_some_and(|t| t.segment < stages || c.decoders.contains(&t.segment))
                {
                    mask = mask.with(t);
                }
            }
            Ok((WidthConfig::from_indices(&c.widths)?, mask))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut p = Profiler {
        model,
        interp: Interpreter::new(model, &mut arena)?,
        input: probe_input(model),
        clock: RunQueueDelay::open(),
        n_seg,
        pair_est: vec![vec![Estimate::default(); n_seg]; pairs.len()],
        direct_est: vec![Estimate::default(); direct.len()],
        pairs,
        direct,
    };
    // Warm caches, branch predictors and the CPU clock. The pair runs execute every op at
    // every width, so they touch every weight a configuration can read.
    for _ in 0..opts.warmup.max(1) {
        for i in 0..p.pairs.len() {
            p.hooked(i, false)?;
        }
    }
    let rounds = opts.reps.max(1);
    let bar = if progress {
        ProgressBar::new(rounds as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("profile {bar:30} {pos}/{len} rounds, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let all_pairs: Vec<usize> = (0..p.pairs.len()).collect();
    let all_configs: Vec<usize> = (0..p.direct.len()).collect();
    p.block(&all_pairs, &all_configs, rounds, &bar)?;
    let names: Vec<String> = (0..n_seg)
        .map(|s| {
            model
                .segment(s)
                .map(|g| g.name.to_string())
                .context("segment index")
        })
        .collect::<Result<_>>()?;
    let mut table = assemble(&p, model, blob_hash, &space, &names)?;
    let errors = |t: &LatencyTable| -> Result<Vec<f64>> {
        Ok(match t.check_additive()? {
            Some(c) => c
                .predicted_us
                .iter()
                .zip(&t.configs)
                .map(|(p, m)| (p - m.latency_us).abs() / m.latency_us)
                .collect(),
            None => Vec::new(),
        })
    };
    let mut err = errors(&table)?;
    let first_pass = {
        let worst = err.iter().copied().fold(0.0, f64::max);
        (median(&mut err.clone()), worst)
    };
    let mut remeasured = vec![false; space.len()];
    let mut passes = 0;
    while passes < opts.remeasure_passes {
        let bad: Vec<usize> = (0..err.len())
            .filter(|&c| err[c] > opts.remeasure_above)
            .collect();
        if bad.is_empty() {
            break;
        }
        passes += 1;
        // A prediction at encoder width e is made of the pair runs at e only; every
        // configuration at e is measured again with them, so that all predictions and
        // measurements at e keep coming from the same rounds.
        // (With several stages a prediction combines pair runs of several encoder
        // configurations: every pair run is measured again.)
        let enc_of = |c: usize| {
            let w: Vec<usize> = space[c].widths[..stages]
                .iter()
                .map(|&i| usize::from(i))
                .collect();
            encoder_config_of(&counts, &w)
        };
        let enc: Vec<usize> = bad.iter().map(|&c| enc_of(c)).collect();
        let pair_ids: Vec<usize> = (0..p.pairs.len())
            .filter(|&i| stages > 1 || enc.contains(&p.pairs[i].0))
            .collect();
        let config_ids: Vec<usize> = (0..space.len())
            .filter(|&c| enc.contains(&enc_of(c)))
            .collect();
        bar.set_length(bar.length().unwrap_or(0) + rounds as u64);
        p.block(&pair_ids, &config_ids, rounds, &bar)?;
        for &c in &bad {
            remeasured[c] = true;
        }
        table = assemble(&p, model, blob_hash, &space, &names)?;
        err = errors(&table)?;
    }
    bar.finish_and_clear();
    let stats = ProfileStats {
        configs: space.len(),
        on_cpu: p.clock.file.is_some(),
        preempted_share: p.clock.preempted as f64 / p.clock.runs.max(1) as f64,
        remeasured: remeasured.iter().filter(|&&r| r).count(),
        passes,
        first_pass,
    };
    Ok((table, stats))
}

/// Encoder configurations to time pair runs at: the covering set of
/// [`edgeslim_runtime::width::encoder`], without repeats.
fn encoder_cover(counts: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 0..encoder::cover_len(counts) {
        let e = encoder::cover(counts, i);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// The latency table from the current estimates.
///
/// An encoder stage's latency at its width `w` (and, for a later stage, at the width `r` of the
/// stage before: `by_encoder_us[r][w]`) is the median of its estimates over the pair runs with
/// those widths (the decoders' widths do not matter to it: one more guard against a disturbed
/// pair run). A decoder's at the last stage's width `r` and its own `w` is the median over the
/// pair runs with those; its `latency_us` is the mean over `r`.
fn assemble(
    p: &Profiler<'_, '_>,
    model: &Model<'_>,
    blob_hash: &str,
    space: &[Config],
    names: &[String],
) -> Result<LatencyTable> {
    let stages = model.num_encoder_segments().max(1);
    let counts: Vec<usize> = (0..stages).map(|k| model.num_widths(k)).collect();
    // (median, spread) of segment s over the pair runs where `keep(e, d)`.
    let est = |s: usize, keep: &dyn Fn(usize, usize) -> bool| -> (f64, f64) {
        let (mut m, mut q): (Vec<f64>, Vec<f64>) = p
            .pairs
            .iter()
            .enumerate()
            .filter(|(_, (e, d, _))| keep(*e, *d))
            .map(|(i, _)| p.pair_est[i][s].get())
            .unzip();
        (median(&mut m), median(&mut q))
    };
    let mut segments = Vec::new();
    for s in 0..p.n_seg {
        let info = model.segment(s).context("segment index")?;
        let n = info.n_widths;
        // The segment whose width this one's cost also depends on, and its width count.
        let read = if s == 0 {
            None
        } else if s < stages {
            Some(s - 1)
        } else {
            Some(stages - 1)
        };
        let own = |e: usize, d: usize, w: usize| {
            if s < stages {
                stage_width(&counts, e, s) == w
            } else {
                d == w
            }
        };
        let rows: Option<Vec<Vec<(f64, f64)>>> = read.map(|r| {
            (0..counts[r])
                .map(|a| {
                    (0..n)
                        .map(|w| est(s, &|e, d| stage_width(&counts, e, r) == a && own(e, d, w)))
                        .collect()
                })
                .collect()
        });
        let (lat, spread): (Vec<f64>, Vec<f64>) = match &rows {
            None => (0..n).map(|w| est(s, &|e, d| own(e, d, w))).unzip(),
            Some(rows) => (0..n)
                .map(|w| {
                    let k = rows.len().max(1) as f64;
                    (
                        rows.iter().map(|r| r[w].0).sum::<f64>() / k,
                        rows.iter().map(|r| r[w].1).sum::<f64>() / k,
                    )
                })
                .unzip(),
        };
        segments.push(SegmentLatency {
            name: info.name.to_string(),
            widths: info.multipliers().iter().map(|&m| m as f64).collect(),
            latency_us: lat,
            spread_us: Some(spread),
            by_encoder_us: rows.map(|rows| {
                rows.iter()
                    .map(|r| r.iter().map(|v| v.0).collect())
                    .collect()
            }),
        });
    }
    let mut table = LatencyTable {
        format: edgeslim_search::latency::LATENCY_FORMAT.into(),
        model_hash: blob_hash.to_string(),
        target: "host".into(),
        unit: edgeslim_search::latency::LATENCY_UNIT.into(),
        overhead_us: 0.0,
        segments,
        encoder_stages: stages,
        configs: Vec::new(),
        conversion: None,
        ops: Vec::new(),
    };
    // Whole configurations, timed directly; the overhead is their median residual.
    let mut residuals = Vec::with_capacity(space.len());
    for (c, est) in space.iter().zip(&p.direct_est) {
        let latency_us = est.get().0;
        residuals.push(latency_us - table.predict(&c.widths, &c.decoders)?);
        table.configs.push(MeasuredConfig {
            widths: c.widths.clone(),
            tasks: c
                .decoders
                .iter()
                .filter_map(|&s| names.get(s).cloned())
                .collect(),
            latency_us: latency_us.max(f64::MIN_POSITIVE),
        });
    }
    table.overhead_us = median(&mut residuals).max(0.0);
    table.validate()?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The re-measurement path, forced: a threshold of 0 re-measures every configuration
    /// once. Only what was measured is checked here, never how fast; the bounds on the
    /// additive model are `tests/additive.rs`'s.
    #[test]
    fn remeasurement_pass_on_digits_mtl() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/digits-mtl");
        let c = edgeslim_compiler::compile(
            &dir.join("model.onnx"),
            &edgeslim_compiler::CompileOptions {
                calib: Some(dir.join("calib.npy")),
                ..Default::default()
            },
        )
        .unwrap();
        let m = Model::parse(&c.blob).unwrap();
        let opts = ProfileOptions {
            warmup: 1,
            reps: 3,
            max_configs: 40,
            remeasure_above: 0.0,
            remeasure_passes: 1,
        };
        let (t, stats) = profile_host_stats(&m, "test", opts, false).unwrap();
        assert_eq!(t.configs.len(), 40);
        assert_eq!(stats.configs, 40);
        assert_eq!(stats.passes, 1);
        assert!(stats.remeasured > 0 && stats.remeasured <= 40, "{stats:?}");
        assert!(t.check_additive().unwrap().is_some());
        let e = t.segment_index("digit").unwrap();
        assert_eq!(t.segments[e].by_encoder_us.as_ref().unwrap().len(), 4);
        assert!(stats.summary().contains("re-measured"));
    }

    /// A plain single-segment network (no slimming manifest): the table has the encoder alone,
    /// its whole configurations are timed, the overhead is their residual.
    #[test]
    fn single_segment_model() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/conformance/dscnn_kws/model_qdq_u8.onnx");
        let c = edgeslim_compiler::compile(&path, &edgeslim_compiler::CompileOptions::default())
            .unwrap();
        let m = Model::parse(&c.blob).unwrap();
        assert_eq!(m.num_segments(), 1, "the conformance file has no decoder");
        let opts = ProfileOptions {
            warmup: 1,
            reps: 3,
            ..ProfileOptions::default()
        };
        let (t, stats) = profile_host_stats(&m, "test", opts, false).unwrap();
        let n_enc = m.segment(0).unwrap().n_widths;
        assert_eq!(t.segments.len(), 1);
        assert_eq!(t.segments[0].latency_us.len(), n_enc);
        assert!(t.segments[0].latency_us.iter().all(|&l| l > 0.0));
        assert_eq!(t.configs.len(), n_enc);
        assert_eq!(stats.configs, n_enc);
        assert!(t.configs.iter().all(|c| c.tasks.is_empty()));
        let check = t.check_additive().unwrap().expect("configurations timed");
        assert_eq!(check.configs, n_enc);
        t.validate().unwrap();
    }

    #[test]
    fn estimates_pool_their_blocks() {
        let mut e = Estimate::default();
        e.push(&[10.0, 11.0, 50.0]);
        assert_eq!(e.get().0, 11.0);
        e.push(&[9.0, 9.5]);
        assert_eq!(e.get().0, 10.0, "median of all five samples");
    }
}
