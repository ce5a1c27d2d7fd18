//! `--target host`: every engine on this machine, one process, one thread each, batch 1, in
//! interleaved rounds.
//!
//! A round gives every engine (each edgeslim width configuration, tract, ONNX Runtime and the
//! harness's Identity model) a chunk of consecutive timed calls; the order of the engines
//! rotates from round to round. A change of machine load during the run therefore falls on
//! every engine alike instead of on whichever ran last. Every call is timed on its own (wall
//! clock); the summaries are medians over all calls of an engine.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Result, anyhow};
use edgeslim_runtime::{Input, Interpreter, TaskMask, WidthConfig};
use indicatif::{ProgressBar, ProgressStyle};

use super::ort::Ort;
use super::tract::Tract;

/// Consecutive calls of one engine in a round.
pub const CHUNK: usize = 5;

/// What can be timed on the host.
pub struct Engines<'m, 'a> {
    /// edgeslim's interpreter, its arena allocated once.
    pub interp: Interpreter<'m, 'a>,
    /// The input, NHWC as the runtime takes it.
    pub input: Vec<f32>,
    /// Width configurations to time.
    pub configs: Vec<WidthConfig>,
    /// Tasks that run (all of them: tract and ORT compute every output).
    pub tasks: TaskMask,
    /// tract, when it loaded the ONNX file.
    pub tract: Option<Tract>,
    /// ONNX Runtime, when its harness started.
    pub ort: Option<Ort>,
}

/// One timed engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Edgeslim(usize),
    Tract,
    Ort,
    OrtIdentity,
}

/// An engine's timed calls, or why it failed during the run.
pub type Calls<T> = Result<T, String>;

/// Timed calls in microseconds; an engine that failed during the run has its reason instead.
pub struct Timings {
    /// Per width configuration.
    pub edgeslim: Vec<Vec<f64>>,
    /// `None` when tract was not loaded.
    pub tract: Option<Calls<Vec<f64>>>,
    /// (model, Identity); `None` when the harness did not start.
    pub ort: Option<Calls<(Vec<f64>, Vec<f64>)>>,
}

/// Rounds and warm-up calls for `iters` timed calls per engine.
pub fn plan(iters: usize) -> (usize, usize) {
    let rounds = iters.div_ceil(CHUNK);
    let warmup = (iters / 10).clamp(2, 20);
    (rounds, warmup)
}

impl Engines<'_, '_> {
    fn time(&mut self, slot: Slot, n: usize) -> Result<Vec<f64>> {
        match slot {
            Slot::Edgeslim(c) => {
                let w = &self.configs[c];
                let mut us = Vec::with_capacity(n);
                for _ in 0..n {
                    let t0 = Instant::now();
                    let out = self
                        .interp
                        .run(Input::F32(black_box(&self.input)), w, self.tasks)
                        .map_err(|e| anyhow!("edgeslim run: {e}"))?;
                    black_box(out.get(0).map(|o| o.data.first().copied()).ok());
                    us.push(t0.elapsed().as_secs_f64() * 1e6);
                }
                Ok(us)
            }
            Slot::Tract => match &mut self.tract {
                Some(t) => t.time(n),
                None => Ok(Vec::new()),
            },
            Slot::Ort | Slot::OrtIdentity => match &mut self.ort {
                Some(o) => o.time(slot == Slot::OrtIdentity, n),
                None => Ok(Vec::new()),
            },
        }
    }
}

/// Warm every engine up, then time `iters` calls of each in interleaved rounds.
pub fn measure(e: &mut Engines<'_, '_>, iters: usize, progress: bool) -> Result<Timings> {
    let mut slots: Vec<Slot> = (0..e.configs.len()).map(Slot::Edgeslim).collect();
    if e.tract.is_some() {
        slots.push(Slot::Tract);
    }
    if e.ort.is_some() {
        slots.extend([Slot::Ort, Slot::OrtIdentity]);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(iters); slots.len()];
    let mut failed: Vec<Option<String>> = vec![None; slots.len()];
    let (rounds, warmup) = plan(iters);
    let bar = if progress {
        ProgressBar::new(rounds as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("bench {bar:30} {pos}/{len} rounds, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Warm-up, then the rounds. An error of edgeslim ends the bench; tract or ORT failing
    // leaves that engine out with the reason.
    let mut step = |e: &mut Engines<'_, '_>, i: usize, n: usize, keep: bool| -> Result<()> {
        if failed[i].is_some() {
            return Ok(());
        }
        match e.time(slots[i], n) {
            Ok(us) if keep => samples[i].extend(us),
            Ok(_) => {}
            Err(err) if matches!(slots[i], Slot::Edgeslim(_)) => return Err(err),
            Err(err) => failed[i] = Some(format!("{err:#}")),
        }
        Ok(())
    };
    for i in 0..slots.len() {
        step(e, i, warmup, false)?;
    }
    for r in 0..rounds {
        let n = CHUNK.min(iters - r * CHUNK);
        for k in 0..slots.len() {
            step(e, (r + k) % slots.len(), n, true)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let result = |i: usize| match &failed[i] {
        Some(err) => Err(err.clone()),
        None => Ok(samples[i].clone()),
    };
    let find = |s: Slot| slots.iter().position(|&x| x == s);
    Ok(Timings {
        edgeslim: (0..e.configs.len())
            .map(|c| find(Slot::Edgeslim(c)).map_or_else(Vec::new, |i| samples[i].clone()))
            .collect(),
        tract: find(Slot::Tract).map(result),
        ort: match (find(Slot::Ort), find(Slot::OrtIdentity)) {
            (Some(m), Some(id)) => Some(result(m).and_then(|m| result(id).map(|id| (m, id)))),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_cover_every_call() {
        for iters in [1, 4, 5, 6, 200, 203] {
            let (rounds, warmup) = plan(iters);
            let total: usize = (0..rounds).map(|r| CHUNK.min(iters - r * CHUNK)).sum();
            assert_eq!(total, iters);
            assert!((2..=20).contains(&warmup));
        }
    }
}
