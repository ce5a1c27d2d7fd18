//! `edgeslim eval`: per-task accuracy at every width configuration, through the runtime (the
//! same code the firmware runs).
//!
//! A task's output depends only on the encoder's width and its own decoder's width, so the
//! table needs `n_encoder_widths x max(n_decoder_widths)` passes over the eval set (every
//! decoder at the same width index in one pass), not the whole configuration space: it is
//! exact, never sampled.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use edgeslim_search::{MetricPoint, MetricTable, SegmentWidths, TaskSpec};
use indicatif::{ProgressBar, ProgressStyle};

/// An evaluation set: NHWC float samples and one label array per task.
#[derive(Debug, Clone)]
pub struct EvalSet {
    /// Number of samples.
    pub n: usize,
    /// Samples, NHWC, `n * sample_len` values.
    pub x: Vec<f32>,
    /// Values per sample.
    pub sample_len: usize,
    /// Labels per task name.
    pub labels: Vec<(String, Vec<i64>)>,
    /// CRC-32 of the file, for the cache key.
    pub crc: u32,
}

/// Load `eval.npz` (`x`: float32 `[N, C, H, W]`; `y_<task>`: integer labels `[N]`) for `model`.
pub fn load_eval_set(path: &Path, model: &Model<'_>) -> Result<EvalSet> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let crc = edgeslim_runtime::format::crc32(&bytes);
    let mut arrays = edgeslim_compiler::npy::parse_npz(&bytes)
        .with_context(|| format!("{} is not a readable .npz archive", path.display()))?;
    let x = arrays
        .remove("x")
        .with_context(|| format!("{}: no array `x`", path.display()))?
        .into_f32()
        .with_context(|| format!("{}: `x`", path.display()))?;
    let inp = model.input();
    if x.shape.len() != 4 || x.shape[1..] != [inp.c, inp.h, inp.w] {
        bail!(
            "{}: `x` has shape {:?}, the model takes [N, {}, {}, {}] (NCHW)",
            path.display(),
            x.shape,
            inp.c,
            inp.h,
            inp.w
        );
    }
    let n = x.shape[0];
    let sample_len = inp.h * inp.w * inp.c;
    let nhwc: Vec<f32> = x
        .data
        .chunks_exact(sample_len)
        .flat_map(|s| edgeslim_compiler::nchw_to_nhwc(s, inp.c, inp.h, inp.w))
        .collect();
    let mut labels = Vec::new();
    for t in 0..model.num_tasks() {
        let name = model.task(t).map(|t| t.name).unwrap_or_default();
        let key = format!("y_{name}");
        let y = arrays
            .remove(&key)
            .with_context(|| format!("{}: no labels `{key}` for task {name:?}", path.display()))?
            .into_i64()
            .with_context(|| format!("{}: `{key}` must hold integer labels", path.display()))?;
        if y.data.len() != n {
            bail!(
                "{}: `{key}` has {} labels for {n} samples",
                path.display(),
                y.data.len()
            );
        }
        labels.push((name.to_string(), y.data));
    }
    Ok(EvalSet {
        n,
        sample_len,
        x: nhwc,
        labels,
        crc,
    })
}

/// Segment names and multipliers of a model.
pub fn segment_widths(model: &Model<'_>) -> Vec<SegmentWidths> {
    (0..model.num_segments())
        .filter_map(|s| model.segment(s))
        .map(|s| SegmentWidths {
            name: s.name.to_string(),
            widths: s.multipliers().iter().map(|&m| m as f64).collect(),
        })
        .collect()
}

/// Correct predictions per task of `model` at `widths` over `set`, with `threads` workers.
fn count_correct(
    model: &Model<'_>,
    set: &EvalSet,
    widths: &WidthConfig,
    threads: usize,
) -> Result<Vec<u64>> {
    let n_tasks = model.num_tasks();
    let counts: Vec<AtomicU64> = (0..n_tasks).map(|_| AtomicU64::new(0)).collect();
    let chunk = set.n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for start in (0..set.n).step_by(chunk) {
            let counts = &counts;
            handles.push(scope.spawn(move || -> Result<()> {
                let mut arena = vec![0u8; model.arena_bytes()];
                let mut interp = Interpreter::new(model, &mut arena)?;
                for s in start..(start + chunk).min(set.n) {
                    let x = &set.x[s * set.sample_len..(s + 1) * set.sample_len];
                    let out = interp.run(Input::F32(x), widths, TaskMask::all(model))?;
                    for (t, (_, y)) in set.labels.iter().enumerate() {
                        if out.task(t)?.argmax() as i64 == y[s] {
                            counts[t].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(())
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("evaluation worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(counts.into_iter().map(|c| c.into_inner()).collect())
}

/// Accuracy of every task at every (encoder width, decoder width) pair.
pub fn evaluate(
    model: &Model<'_>,
    blob_hash: &str,
    set: &EvalSet,
    progress: bool,
) -> Result<MetricTable> {
    let n_enc = model.segment(0).map_or(1, |s| s.n_widths);
    let mut tasks = Vec::new();
    let mut n_dec = 1;
    for t in 0..model.num_tasks() {
        let info = model.task(t).context("task index")?;
        if info.segment == 0 {
            bail!(
                "task {:?} is computed in the encoder: eval needs a decoder per task (a slimming manifest)",
                info.name
            );
        }
        let seg = model.segment(info.segment).context("segment index")?;
        n_dec = n_dec.max(seg.n_widths);
        tasks.push(TaskSpec {
            name: info.name.to_string(),
            segment: seg.name.to_string(),
            metric: "accuracy".into(),
        });
    }
    let bar = if progress {
        ProgressBar::new((n_enc * n_dec) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "eval {bar:30} {pos}/{len} width configs, {elapsed} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut points = Vec::new();
    for e in 0..n_enc {
        for d in 0..n_dec {
            let mut w = WidthConfig::full(model);
            w.set(0, e as u8)?;
            for s in 1..model.num_segments() {
                let nw = model.segment(s).map_or(1, |g| g.n_widths);
                w.set(s, d.min(nw - 1) as u8)?;
            }
            let correct = count_correct(model, set, &w, threads)?;
            for t in 0..model.num_tasks() {
                let seg = model.task(t).map_or(0, |t| t.segment);
                if d < model.segment(seg).map_or(0, |g| g.n_widths) {
                    points.push(MetricPoint {
                        encoder: e,
                        decoder: d,
                        task: tasks[t].name.clone(),
                        value: correct[t] as f64 / set.n.max(1) as f64,
                    });
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(MetricTable::from_points(
        blob_hash,
        segment_widths(model),
        tasks,
        points,
    )?)
}

/// Where the eval cache of a model and data set lives.
pub fn cache_path(cache_dir: &Path, model_hash: &str, set: &EvalSet) -> PathBuf {
    let key = model_hash.replace(':', "-");
    cache_dir.join(format!("eval-{key}-data-{:08x}.json", set.crc))
}

/// [`evaluate`], reading and writing the on-disk cache keyed by the model's and the data's hash.
pub fn evaluate_cached(
    model: &Model<'_>,
    blob_hash: &str,
    set: &EvalSet,
    cache_dir: Option<&Path>,
    progress: bool,
) -> Result<(MetricTable, bool)> {
    if let Some(dir) = cache_dir {
        let p = cache_path(dir, blob_hash, set);
        if p.exists()
            && let Ok(t) = MetricTable::load(&p)
            && t.model_hash == blob_hash
        {
            return Ok((t, true));
        }
    }
    let table = evaluate(model, blob_hash, set, progress)?;
    if let Some(dir) = cache_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        table.save(&cache_path(dir, blob_hash, set))?;
    }
    Ok((table, false))
}
