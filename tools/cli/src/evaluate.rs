//! `edgeslim eval`: every task's metric at every width configuration, through the runtime (the
//! same code the firmware runs): accuracy for classification, mean IoU for segmentation, RMSE
//! for dense regression (the labels' shape and type decide).
//!
//! A task's output depends only on the encoder's configuration (one width per stage) and its
//! own decoder's width, so the table needs `encoder configurations x max(n_decoder_widths)`
//! passes over the eval set (every decoder at the same width index in one pass), not the whole
//! configuration space: it is exact, never sampled.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use edgeslim_search::{MetricPoint, MetricTable, SegmentWidths, TaskSpec};
use indicatif::{ProgressBar, ProgressStyle};

/// One task's labels in an evaluation set; the kind decides the metric.
#[derive(Debug, Clone)]
pub enum Labels {
    /// `y_<task>` integer `[N]`: a class per sample; metric `accuracy`.
    Class(Vec<i64>),
    /// `y_<task>` integer `[N, H, W]`: a class per pixel; metric `miou` (pixel accuracy
    /// beside it).
    Segmentation {
        /// Rows.
        h: usize,
        /// Columns.
        w: usize,
        /// `N * H * W` classes.
        map: Vec<i64>,
    },
    /// `y_<task>` float `[N, H, W]` (> 0): a value per pixel, e.g. depth; metric `rmse`
    /// (lower is better; `abs_rel` beside it).
    Dense {
        /// Rows.
        h: usize,
        /// Columns.
        w: usize,
        /// `N * H * W` values.
        map: Vec<f32>,
    },
}

impl Labels {
    /// The metric these labels are scored with (the metric table's `metric`).
    pub fn metric(&self) -> &'static str {
        match self {
            Labels::Class(_) => "accuracy",
            Labels::Segmentation { .. } => "miou",
            Labels::Dense { .. } => "rmse",
        }
    }
}

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
    pub labels: Vec<(String, Labels)>,
    /// CRC-32 of the file, for the cache key.
    pub crc: u32,
}

impl EvalSet {
    /// Keep the first `n` samples (all of them when there are fewer). The cache key changes
    /// with the number kept.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.n {
            return;
        }
        self.x.truncate(n * self.sample_len);
        for (_, l) in &mut self.labels {
            match l {
                Labels::Class(y) => y.truncate(n),
                Labels::Segmentation { h, w, map } => map.truncate(n * *h * *w),
                Labels::Dense { h, w, map } => map.truncate(n * *h * *w),
            }
        }
        self.n = n;
        self.crc = self.crc.rotate_left(7) ^ (n as u32).wrapping_mul(0x9E37_79B9);
    }
}

/// Load an evaluation set (`eval.npz`, or a model's `val.npz`) for `model`: `x` float32
/// `[N, C, H, W]`; per task `y_<task>`: integer `[N]` (classification), integer `[N, H, W]`
/// (segmentation) or float `[N, H, W]` (dense regression, values > 0).
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
            .with_context(|| format!("{}: no labels `{key}` for task {name:?}", path.display()))?;
        let shape = y.shape().to_vec();
        let what = |e: &str| format!("{}: `{key}` {e}", path.display());
        let l = match (shape.as_slice(), y.dtype()) {
            ([m], _) if *m == n => Labels::Class(
                y.into_i64()
                    .with_context(|| what("must hold integer labels"))?
                    .data,
            ),
            ([m, h, w], "float32" | "float64") if *m == n => {
                let map = y.into_f32().with_context(|| what("float"))?.data;
                if let Some(v) = map.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                    bail!(
                        "{}",
                        what(&format!("holds {v}: dense targets must be finite and > 0"))
                    );
                }
                Labels::Dense { h: *h, w: *w, map }
            }
            ([m, h, w], _) if *m == n => {
                let map = y
                    .into_i64()
                    .with_context(|| what("must hold integer classes"))?
                    .data;
                if let Some(v) = map.iter().find(|v| **v < 0) {
                    bail!("{}", what(&format!("holds class {v}: classes are >= 0")));
                }
                Labels::Segmentation { h: *h, w: *w, map }
            }
            _ => bail!(
                "{}",
                what(&format!(
                    "has shape {shape:?}: expected [{n}] (classes), or [{n}, H, W] (a class or a value per pixel)"
                ))
            ),
        };
        labels.push((name.to_string(), l));
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

/// How a task is scored, and the sufficient statistics it sums over samples: everything a
/// metric needs is a sum over samples, so a bootstrap resample is a sum of per-sample vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[correct, samples]`.
    Accuracy,
    /// `[tp_0.., fp_0.., fn_0.., correct pixels, pixels]` over `k` classes.
    Miou {
        /// Classes.
        k: usize,
    },
    /// `[sum of squared errors, sum of relative errors, values]`.
    Rmse,
}

impl Kind {
    /// The kind of `labels`, for an output of `out_channels` channels.
    pub fn of(labels: &Labels, out_channels: usize) -> Kind {
        match labels {
            Labels::Class(_) => Kind::Accuracy,
            Labels::Segmentation { .. } => Kind::Miou { k: out_channels },
            Labels::Dense { .. } => Kind::Rmse,
        }
    }

    /// Length of the statistics vector.
    pub fn len(self) -> usize {
        match self {
            Kind::Accuracy => 2,
            Kind::Miou { k } => 3 * k + 2,
            Kind::Rmse => 3,
        }
    }

    /// The metric (and the figure beside it) of summed statistics `v`.
    pub fn score(self, v: &[f64]) -> TaskScore {
        match self {
            Kind::Accuracy => TaskScore {
                metric: "accuracy",
                value: v[0] / v[1].max(1.0),
                extra: None,
            },
            Kind::Miou { k } => {
                let ious: Vec<f64> = (0..k)
                    .filter_map(|c| {
                        let union = v[c] + v[k + c] + v[2 * k + c];
                        (union > 0.0).then(|| v[c] / union)
                    })
                    .collect();
                TaskScore {
                    metric: "miou",
                    value: ious.iter().sum::<f64>() / ious.len().max(1) as f64,
                    extra: Some(("pixel_accuracy", v[3 * k] / v[3 * k + 1].max(1.0))),
                }
            }
            Kind::Rmse => TaskScore {
                metric: "rmse",
                value: (v[0] / v[2].max(1.0)).sqrt(),
                extra: Some(("abs_rel", v[1] / v[2].max(1.0))),
            },
        }
    }

    /// Add sample `s`'s output `out` (int8 NHWC) against `labels` to `v`.
    pub fn add(
        self,
        v: &mut [f64],
        task: &str,
        labels: &Labels,
        s: usize,
        out: &edgeslim_runtime::OutputView<'_>,
        buf: &mut Vec<f32>,
    ) -> Result<()> {
        let sh = out.shape;
        match (self, labels) {
            (Kind::Accuracy, Labels::Class(y)) => {
                if out.argmax() as i64 == y[s] {
                    v[0] += 1.0;
                }
                v[1] += 1.0;
            }
            (Kind::Miou { k }, Labels::Segmentation { h, w, map }) => {
                if (sh.h, sh.w, sh.c) != (*h, *w, k) {
                    bail!(
                        "task {task:?}: output [{}, {}, {}] (h, w, classes) does not match labels [{h}, {w}] with {k} classes",
                        sh.h,
                        sh.w,
                        sh.c
                    );
                }
                let lab = &map[s * h * w..(s + 1) * h * w];
                for (p, px) in out.data.chunks_exact(k).enumerate() {
                    let mut best = 0;
                    for (i, &x) in px.iter().enumerate() {
                        if x > px[best] {
                            best = i;
                        }
                    }
                    let l = usize::try_from(lab[p]).unwrap_or(usize::MAX);
                    if l >= k {
                        bail!(
                            "task {task:?}: sample {s} has class {} but the output has {k} classes",
                            lab[p]
                        );
                    }
                    if l == best {
                        v[l] += 1.0;
                        v[3 * k] += 1.0;
                    } else {
                        v[k + best] += 1.0;
                        v[2 * k + l] += 1.0;
                    }
                    v[3 * k + 1] += 1.0;
                }
            }
            (Kind::Rmse, Labels::Dense { h, w, map }) => {
                if (sh.h, sh.w, sh.c) != (*h, *w, 1) {
                    bail!(
                        "task {task:?}: output [{}, {}, {}] (h, w, c) does not match labels [{h}, {w}] of one value per pixel",
                        sh.h,
                        sh.w,
                        sh.c
                    );
                }
                buf.resize(out.data.len(), 0.0);
                out.dequantize_into(buf)?;
                for (p, g) in buf.iter().zip(&map[s * h * w..(s + 1) * h * w]) {
                    let e = f64::from(p - g);
                    v[0] += e * e;
                    v[1] += e.abs() / f64::from(*g);
                }
                v[2] += buf.len() as f64;
            }
            _ => bail!("task {task:?}: labels and score kinds differ"),
        }
        Ok(())
    }
}

/// One task's metric at one configuration, with the figure reported beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScore {
    /// The metric (`accuracy`, `miou`, `rmse`).
    pub metric: &'static str,
    /// Its value.
    pub value: f64,
    /// The secondary figure (`pixel_accuracy` beside `miou`, `abs_rel` beside `rmse`).
    pub extra: Option<(&'static str, f64)>,
}

/// Each task's scoring kind for `model` and `set` (a segmentation's classes are its output's
/// channels: a task output is never slimmed).
pub fn kinds(model: &Model<'_>, set: &EvalSet) -> Vec<Kind> {
    set.labels
        .iter()
        .enumerate()
        .map(|(t, (_, l))| {
            let c = model
                .task(t)
                .and_then(|i| model.output(i.first_output))
                .and_then(|o| model.tensor(o.tensor))
                .map_or(1, |t| t.c);
            Kind::of(l, c)
        })
        .collect()
}

/// Per-sample statistics of every task (`[sample][task]`) of `model` at `widths` over `set`,
/// with `threads` workers: what bootstrap confidence intervals resample.
pub fn sample_stats(
    model: &Model<'_>,
    set: &EvalSet,
    widths: &WidthConfig,
    threads: usize,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let kinds = kinds(model, set);
    let chunk = set.n.div_ceil(threads.max(1)).max(1);
    let parts = std::thread::scope(|scope| -> Result<Vec<Vec<Vec<Vec<f64>>>>> {
        let mut handles = Vec::new();
        for start in (0..set.n).step_by(chunk) {
            let kinds = &kinds;
            handles.push(scope.spawn(move || -> Result<Vec<Vec<Vec<f64>>>> {
                let mut arena = vec![0u8; model.arena_bytes()];
                let mut interp = Interpreter::new(model, &mut arena)?;
                let mut buf = Vec::new();
                let mut out_stats = Vec::new();
                for s in start..(start + chunk).min(set.n) {
                    let x = &set.x[s * set.sample_len..(s + 1) * set.sample_len];
                    let out = interp.run(Input::F32(x), widths, TaskMask::all(model))?;
                    let mut per_task = Vec::with_capacity(kinds.len());
                    for (t, ((name, y), &kind)) in set.labels.iter().zip(kinds).enumerate() {
                        let mut v = vec![0.0; kind.len()];
                        kind.add(&mut v, name, y, s, &out.task(t)?, &mut buf)?;
                        per_task.push(v);
                    }
                    out_stats.push(per_task);
                }
                Ok(out_stats)
            }));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("evaluation worker panicked"))?
            })
            .collect()
    })?;
    Ok(parts.into_iter().flatten().collect())
}

/// The scores of summed per-sample statistics over the samples `idx` (all when `None`).
pub fn scores_of(kinds: &[Kind], stats: &[Vec<Vec<f64>>], idx: Option<&[usize]>) -> Vec<TaskScore> {
    kinds
        .iter()
        .enumerate()
        .map(|(t, &k)| {
            let mut v = vec![0.0; k.len()];
            let mut add = |s: &Vec<Vec<f64>>| {
                v.iter_mut().zip(&s[t]).for_each(|(a, b)| *a += b);
            };
            match idx {
                Some(idx) => idx.iter().for_each(|&i| add(&stats[i])),
                None => stats.iter().for_each(&mut add),
            }
            k.score(&v)
        })
        .collect()
}

/// Every task's metric for `model` at `widths` over `set`, with `threads` workers.
pub fn score_config(
    model: &Model<'_>,
    set: &EvalSet,
    widths: &WidthConfig,
    threads: usize,
) -> Result<Vec<TaskScore>> {
    let stats = sample_stats(model, set, widths, threads)?;
    Ok(scores_of(&kinds(model, set), &stats, None))
}

/// Every task's metric at every (encoder configuration, decoder width) pair.
pub fn evaluate(
    model: &Model<'_>,
    blob_hash: &str,
    set: &EvalSet,
    progress: bool,
) -> Result<MetricTable> {
    let stages = model.num_encoder_segments();
    let counts: Vec<usize> = (0..stages).map(|k| model.num_widths(k)).collect();
    let n_enc = edgeslim_search::config::encoder_configs(&counts);
    let mut tasks = Vec::new();
    let mut n_dec = 1;
    for (t, (_, labels)) in set.labels.iter().enumerate() {
        let info = model.task(t).context("task index")?;
        if info.segment < stages {
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
            metric: labels.metric().into(),
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
            for k in 0..stages {
                w.set(k, edgeslim_search::config::stage_width(&counts, e, k) as u8)?;
            }
            for s in stages..model.num_segments() {
                let nw = model.segment(s).map_or(1, |g| g.n_widths);
                w.set(s, d.min(nw - 1) as u8)?;
            }
            let scores = score_config(model, set, &w, threads)?;
            for t in 0..model.num_tasks() {
                let seg = model.task(t).map_or(0, |t| t.segment);
                if d < model.segment(seg).map_or(0, |g| g.n_widths) {
                    points.push(MetricPoint {
                        encoder: e,
                        decoder: d,
                        task: tasks[t].name.clone(),
                        value: scores[t].value,
                    });
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(MetricTable::from_points_staged(
        blob_hash,
        segment_widths(model),
        stages,
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
