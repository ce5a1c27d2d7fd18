//! `edgeslim profile --target host`: a latency table measured with the runtime on this machine.
//!
//! Per-op wall time comes from the interpreter's [`Observer`] hooks. For every encoder width
//! `e` and decoder width index `d` the model runs (all tasks, every decoder at `d`) `warmup`
//! times, then `reps` timed times; a segment's time in one run is the sum of its ops' times.
//! The encoder's latency at `e` is the median over runs; a decoder's latency is kept per
//! (encoder width, decoder width) pair (`by_encoder_us`: its first layer reads the encoder's
//! active channels, so its cost scales with both), and as the mean over encoder widths. Whole configurations are then timed directly,
//! without hooks; the fixed per-inference overhead is the median of (direct - sum of segment
//! latencies) over them, and the table carries those direct measurements so the additive model
//! can be checked against them (`LatencyTable::check_additive`).

use std::time::Instant;

use anyhow::{Context, Result};
use edgeslim_runtime::{Input, Interpreter, Model, Observer, OpInfo, TaskMask, WidthConfig};
use edgeslim_search::{LatencyTable, MeasuredConfig, SegmentLatency};
use indicatif::{ProgressBar, ProgressStyle};

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct ProfileOptions {
    /// Untimed runs before each measurement.
    pub warmup: usize,
    /// Timed runs per measurement (the median is kept).
    pub reps: usize,
    /// Most whole configurations to time directly (all when the space is smaller; otherwise
    /// an even spread over the space).
    pub max_configs: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            warmup: 5,
            reps: 31,
            max_configs: 256,
        }
    }
}

/// Sums per-op wall time into per-segment nanoseconds.
struct SegmentTimer {
    start: Option<Instant>,
    ns: Vec<u64>,
}

impl Observer for SegmentTimer {
    fn op_start(&mut self, _index: usize, _op: &OpInfo) {
        self.start = Some(Instant::now());
    }
    fn op_end(&mut self, _index: usize, op: &OpInfo) {
        if let (Some(t), Some(slot)) = (self.start.take(), self.ns.get_mut(op.segment)) {
            *slot += t.elapsed().as_nanos() as u64;
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
fn probe_input(model: &Model<'_>) -> Vec<f32> {
    (0..model.input_len())
        .map(|i| ((i * 37 % 101) as f32) / 101.0)
        .collect()
}

/// Every width configuration of `model` (encoder first), at most `max` of them evenly spread.
pub fn width_space(model: &Model<'_>, max: usize) -> Vec<Vec<u8>> {
    let dims: Vec<usize> = (0..model.num_segments())
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .collect();
    let total: usize = dims.iter().product();
    let step = total.div_ceil(max.max(1)).max(1);
    (0..total)
        .step_by(step)
        .map(|mut code| {
            dims.iter()
                .map(|&d| {
                    let i = code % d;
                    code /= d;
                    i as u8
                })
                .collect()
        })
        .collect()
}

/// Measure the latency table of `model` on this machine.
///
/// Measurements are interleaved: each of `reps` rounds runs every (encoder, decoder) width
/// pair once with hooks and every sampled whole configuration once without, so a change of
/// machine load during profiling shifts all of them alike instead of biasing some.
pub fn profile_host(
    model: &Model<'_>,
    blob_hash: &str,
    opts: ProfileOptions,
    progress: bool,
) -> Result<LatencyTable> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(model, &mut arena)?;
    let input = probe_input(model);
    let tasks = TaskMask::all(model);
    let n_seg = model.num_segments();
    let n_enc = model.segment(0).map_or(1, |s| s.n_widths);
    let n_dec = (1..n_seg)
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .max()
        .unwrap_or(1);
    let space = width_space(model, opts.max_configs);
    let pairs: Vec<(usize, usize, WidthConfig)> = (0..n_enc)
        .flat_map(|e| (0..n_dec).map(move |d| (e, d)))
        .map(|(e, d)| {
            let mut w = WidthConfig::full(model);
            w.set(0, e as u8)?;
            for s in 1..n_seg {
                let nw = model.segment(s).map_or(1, |g| g.n_widths);
                w.set(s, d.min(nw - 1) as u8)?;
            }
            Ok((e, d, w))
        })
        .collect::<Result<_>>()?;
    let configs: Vec<WidthConfig> = space
        .iter()
        .map(|idx| WidthConfig::from_indices(idx))
        .collect::<Result<_, _>>()?;
    // Warm caches, branch predictors and the CPU clock on every configuration.
    for _ in 0..opts.warmup.max(1) {
        for (_, _, w) in &pairs {
            interp.run(Input::F32(&input), w, tasks)?;
        }
        for w in &configs {
            interp.run(Input::F32(&input), w, tasks)?;
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
    // samples[s][e][d] and direct[c]: one value per round.
    let mut samples = vec![vec![vec![Vec::with_capacity(rounds); n_dec]; n_enc]; n_seg];
    let mut direct = vec![Vec::with_capacity(rounds); configs.len()];
    for _ in 0..rounds {
        for (e, d, w) in &pairs {
            let mut timer = SegmentTimer {
                start: None,
                ns: vec![0; n_seg],
            };
            interp.run_observed(Input::F32(&input), w, tasks, &mut timer)?;
            for (s, &ns) in timer.ns.iter().enumerate() {
                samples[s][*e][*d].push(ns as f64 / 1000.0);
            }
        }
        for (c, w) in configs.iter().enumerate() {
            let t = Instant::now();
            interp.run(Input::F32(&input), w, tasks)?;
            direct[c].push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seg_times: Vec<Vec<Vec<(f64, f64)>>> = samples
        .iter_mut()
        .map(|per_e| {
            per_e
                .iter_mut()
                .map(|per_d| per_d.iter_mut().map(|v| (median(v), iqr(v))).collect())
                .collect()
        })
        .collect();
    let mut segments = Vec::new();
    for s in 0..n_seg {
        let info = model.segment(s).context("segment index")?;
        let (lat, spread): (Vec<f64>, Vec<f64>) = (0..info.n_widths)
            .map(|w| {
                if s == 0 {
                    let mut m: Vec<f64> = (0..n_dec).map(|d| seg_times[0][w][d].0).collect();
                    let mut q: Vec<f64> = (0..n_dec).map(|d| seg_times[0][w][d].1).collect();
                    (median(&mut m), median(&mut q))
                } else {
                    let m = (0..n_enc).map(|e| seg_times[s][e][w].0).sum::<f64>() / n_enc as f64;
                    let q = (0..n_enc).map(|e| seg_times[s][e][w].1).sum::<f64>() / n_enc as f64;
                    (m, q)
                }
            })
            .unzip();
        // A decoder's first layer reads the encoder's active channels: keep its latency per
        // encoder width too, so the search predicts (encoder, decoder) pairs exactly.
        let by_encoder_us = (s > 0).then(|| {
            (0..n_enc)
                .map(|e| (0..info.n_widths).map(|w| seg_times[s][e][w].0).collect())
                .collect()
        });
        segments.push(SegmentLatency {
            name: info.name.to_string(),
            widths: info.multipliers().iter().map(|&m| m as f64).collect(),
            latency_us: lat,
            spread_us: Some(spread),
            by_encoder_us,
        });
    }
    // Whole configurations, timed directly.
    let decoder_names: Vec<String> = segments[1..].iter().map(|s| s.name.clone()).collect();
    let mut measured = Vec::new();
    let mut residuals = Vec::new();
    for (idx, v) in space.iter().zip(direct.iter_mut()) {
        let latency_us = median(v);
        let sum: f64 = segments
            .iter()
            .zip(idx)
            .map(|(s, &i)| s.latency_us[i as usize])
            .sum();
        residuals.push(latency_us - sum);
        measured.push(MeasuredConfig {
            widths: idx.clone(),
            tasks: decoder_names.clone(),
            latency_us,
        });
    }
    let overhead_us = median(&mut residuals).max(0.0);
    let table = LatencyTable {
        format: edgeslim_search::latency::LATENCY_FORMAT.into(),
        model_hash: blob_hash.to_string(),
        target: "host".into(),
        unit: edgeslim_search::latency::LATENCY_UNIT.into(),
        overhead_us,
        segments,
        configs: measured,
    };
    table.validate()?;
    Ok(table)
}
