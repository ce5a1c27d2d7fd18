//! The search: a [`Problem`] (latency table, metric table, task preferences, task set) and a
//! budget in, a width configuration out.
//!
//! # Weighted score
//! For running tasks `T` with preference weights `w_t >= 0` (not all zero), a configuration
//! scores
//!
//! ```text
//! score = sum_{t in T} w_t * u_t(e, d_t) / sum_{t in T} w_t
//! ```
//!
//! where `e` is the encoder configuration (the encoder width index with one stage; one width per
//! stage otherwise) and `d_t` the width index of task `t`'s decoder. `u_t` is task `t`'s
//! **utility**: its metric mapped linearly so that the worst value in its metric table is 0 and
//! the best 1 ([`MetricTable::utility_scale`]): an accuracy, a mean IoU (higher is better) and
//! an RMSE (lower is better) then weigh on one scale, and a preference means the same for every
//! task whatever its metric's units. Weights are relative: `digit=3,bold=1` and `digit=6,bold=2`
//! give the same score. Latency is additive: `L = overhead + sum over encoder stages L_k +
//! sum over running decoders L_s(d_s)`, each segment at the width of the segment it reads.
//!
//! # Orders and ties
//! Configurations are ranked by score (higher first), then predicted latency (lower first), then
//! width indices (lexicographically smaller first), so every mode has one well-defined answer
//! and a well-defined runner-up.
//!
//! # Paper mode
//! After Aich et al., "Efficient Controllable Multi-Task Architectures" (ICCV 2023): task
//! importance is expressed through decoder width, the total cost through encoder width. The key
//! rule of their search is to give the more preferred task's decoder the larger budget and to
//! pick the shared encoder that maximises the multi-task performance within what is left. Here:
//!
//! 1. Each running decoder `s` gets the preference `p_s = sum of w_t over running tasks on s`
//!    (one task per decoder is the usual case: `p_s = w_t`), normalised by the largest,
//!    `q_s = p_s / max p in (0, 1]`: the most preferred decoder targets full width.
//! 2. Decoder `s` gets the narrowest width multiplier `>= q_s` (its widest if none is), so the
//!    allocation is monotone in preference for decoders that share a width list. For different
//!    lists, decoders are then raised, least preferred first, until no decoder is narrower (as a
//!    multiplier) than one with a strictly smaller preference.
//! 3. With decoders fixed, the encoder width is the one with the best weighted score among those
//!    whose predicted latency fits the budget ("the remaining budget goes to the encoder").
//! 4. If no encoder width fits, one decoder steps down one width: the least preferred decoder
//!    (ties: the later segment) that can step down without becoming narrower than a strictly
//!    less preferred decoder. Then step 3 again. When nothing can step down any more the result
//!    is [`Error::PaperInfeasible`].
//!
//! Invariant (tested): for any two running decoders with `p_a > p_b`, the chosen multiplier of
//! `a` is `>=` that of `b`, and the predicted latency is within the budget. The runner-up in
//! paper mode is the second-best encoder width at the chosen decoder widths.
//!
//! Why this is the paper's rule: the paper states it as "provide a larger computational budget
//! to the higher preferred task decoder, while searching a shared encoder configuration that
//! enhances the overall MTL performance". Steps 1-2 are the first half (decoder width is a
//! monotone function of preference alone, independent of the budget, so a preference change moves
//! decoder widths the same way at every budget: that is what makes the model controllable);
//! step 3 is the second half (the encoder is the only thing the budget chooses, by searching for
//! the best score); step 4 only matters when the budget cannot even pay for the narrowest encoder,
//! and then gives up capacity where the user cares least. By design paper mode does not spend
//! budget left over after the encoder choice on the decoders: that, and any other gain from
//! breaking preference order, is what [`Problem::compare`] reports as the gap to exact mode.
//!
//! # Exact mode
//! The best configuration under the budget over the whole space, either by exhaustive
//! enumeration (allocation-free loop over precomputed per-decoder tables) or by branch and bound
//! (depth-first over encoder, then decoders; a subtree is cut when the best metric each
//! remaining decoder could reach within the remaining budget cannot beat the current
//! runner-up). Both return the same best and runner-up.

use serde::Serialize;

use crate::config::{TaskMask, WidthConfig};
use crate::error::{Error, Result};
use crate::latency::LatencyTable;
use crate::metrics::MetricTable;

/// Above this many configurations [`ExactMethod::Auto`] uses branch and bound.
pub const AUTO_BRANCH_AND_BOUND_ABOVE: u64 = 1 << 16;

/// Parse a preference string such as `digit=3,bold=1` into `(task, weight)` pairs.
///
/// Items are separated by `,`, each is `name=weight` (spaces around either are ignored), weights
/// are finite numbers `>= 0`, names appear once.
///
/// ```
/// let p = edgeslim_search::parse_preferences("digit=3, bold=1").unwrap();
/// assert_eq!(p, vec![("digit".to_string(), 3.0), ("bold".to_string(), 1.0)]);
/// assert!(edgeslim_search::parse_preferences("digit=3,bold").is_err());
/// ```
pub fn parse_preferences(input: &str) -> Result<Vec<(String, f64)>> {
    let bad = |reason: String| Error::BadPreference {
        input: input.to_string(),
        reason,
    };
    if input.trim().is_empty() {
        return Err(bad("empty; expected e.g. digit=3,bold=1".into()));
    }
    let mut out: Vec<(String, f64)> = Vec::new();
    for (i, item) in input.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(bad(format!("item {} is empty", i + 1)));
        }
        let Some((name, value)) = item.split_once('=') else {
            return Err(bad(format!("item {item:?} is not name=weight")));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return Err(bad(format!("item {item:?} has no task name")));
        }
        let w: f64 = value
            .parse()
            .map_err(|_| bad(format!("weight {value:?} of {name:?} is not a number")))?;
        if !w.is_finite() || w < 0.0 {
            return Err(bad(format!(
                "weight {value:?} of {name:?} must be a finite number >= 0"
            )));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(bad(format!("task {name:?} given twice")));
        }
        out.push((name.to_string(), w));
    }
    Ok(out)
}

/// Parse a latency budget into microseconds: a number with unit `us`, `ms` or `s`
/// (`2ms`, `1500 us`, `0.5s`); a bare number is microseconds. Must be finite and `> 0`.
///
/// ```
/// assert_eq!(edgeslim_search::parse_budget_us("2ms").unwrap(), 2000.0);
/// assert_eq!(edgeslim_search::parse_budget_us("750").unwrap(), 750.0);
/// assert!(edgeslim_search::parse_budget_us("2 parsecs").is_err());
/// ```
pub fn parse_budget_us(input: &str) -> Result<f64> {
    let bad = |reason: &str| Error::BadBudget {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E' || c == 'µ')
        .unwrap_or(s.len());
    let (num, unit) = (s[..split].trim(), s[split..].trim());
    let scale = match unit {
        "" | "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return Err(bad("unit must be us, ms or s")),
    };
    let v: f64 = num.parse().map_err(|_| bad("not a number"))?;
    let us = v * scale;
    if !us.is_finite() || us <= 0.0 {
        return Err(bad("must be finite and > 0"));
    }
    Ok(us)
}

/// Parse a comma-separated list of budgets (`1ms,2.5ms,5000`) into whole microseconds
/// (rounded down), for bundle levels.
pub fn parse_budgets_us(input: &str) -> Result<Vec<u32>> {
    input
        .split(',')
        .map(|item| {
            let us = parse_budget_us(item)?.floor();
            if us < 1.0 || us > f64::from(u32::MAX) {
                return Err(Error::BadBudget {
                    input: item.trim().to_string(),
                    reason: "must be between 1 us and u32::MAX us".into(),
                });
            }
            Ok(us as u32)
        })
        .collect()
}

/// Turn `(task, weight)` pairs into one weight per task of `metrics` (its `tasks` order).
/// Tasks not named get weight 0. Unknown names are an [`Error::UnknownTask`].
pub fn resolve_preferences(metrics: &MetricTable, pairs: &[(String, f64)]) -> Result<Vec<f64>> {
    let mut w = vec![0.0; metrics.tasks.len()];
    for (name, v) in pairs {
        let t = metrics.task_index(name).ok_or_else(|| Error::UnknownTask {
            name: name.clone(),
            known: metrics.task_names(),
        })?;
        w[t] = *v;
    }
    Ok(w)
}

/// Parse a task set such as `digit,bold` (or `all`) into a [`TaskMask`].
pub fn parse_task_set(metrics: &MetricTable, input: &str) -> Result<TaskMask> {
    if input.trim() == "all" {
        return Ok(TaskMask::all(metrics.tasks.len()));
    }
    let mut mask = 0u32;
    for name in input.split(',').map(str::trim) {
        let t = metrics.task_index(name).ok_or_else(|| Error::UnknownTask {
            name: name.to_string(),
            known: metrics.task_names(),
        })?;
        if mask & (1 << t) != 0 {
            return Err(Error::Problem(format!("task {name:?} listed twice")));
        }
        mask |= 1 << t;
    }
    Ok(TaskMask(mask))
}

/// A running decoder, precomputed for the search loops.
#[derive(Debug, Clone)]
pub(crate) struct Dec {
    /// Segment index.
    pub seg: usize,
    /// Number of widths.
    pub n: usize,
    /// Width multipliers.
    pub widths: Vec<f64>,
    /// `lat[e * n + d]`: latency at encoder width `e` and decoder width `d`.
    pub lat: Vec<f64>,
    /// `val[e * n + d]`: sum of `w_t * m_t[e][d]` over running tasks on this decoder.
    pub val: Vec<f64>,
    /// Smallest latency over widths.
    pub min_lat: f64,
    /// Sum of preference weights of running tasks on this decoder.
    pub pref: f64,
}

/// A running task: its index in the metric table and its decoder's position in `Space::decs`.
#[derive(Debug, Clone)]
pub(crate) struct SpaceTask {
    pub task: usize,
    pub dec: usize,
}

/// The problem flattened into tables indexed by width indices.
#[derive(Debug, Clone)]
pub(crate) struct Space {
    pub n_segments: usize,
    pub overhead: f64,
    pub enc_lat: Vec<f64>,
    pub decs: Vec<Dec>,
    pub tasks: Vec<SpaceTask>,
    pub weight_sum: f64,
    /// `suffix_min[k]`: sum of `min_lat` of decoders `k..`.
    pub suffix_min: Vec<f64>,
    /// Per decoder: `(position in tasks, metric-table task index)` of the tasks it computes.
    pub dec_tasks: Vec<Vec<(usize, usize)>>,
}

impl Space {
    /// Score numerator and latency of `(e, ds)`, summed in the one fixed order every mode uses.
    #[inline]
    pub fn eval(&self, e: usize, ds: &[usize]) -> (f64, f64) {
        let mut lat = self.overhead + self.enc_lat[e];
        let mut num = 0.0;
        for (dec, &d) in self.decs.iter().zip(ds) {
            lat += dec.lat[e * dec.n + d];
            num += dec.val[e * dec.n + d];
        }
        (num, lat)
    }

    /// Total number of configurations (encoder times running decoders).
    pub fn count(&self) -> u64 {
        self.decs.iter().fold(self.enc_lat.len() as u64, |acc, d| {
            acc.saturating_mul(d.n as u64)
        })
    }

    /// Visit every configuration as `idx = [e, d_0, .., d_{K-1}]` with its score numerator and
    /// latency. No allocation beyond the caller's `idx` buffer (length `decs.len() + 1`).
    #[inline]
    pub fn for_each(&self, idx: &mut [usize], mut f: impl FnMut(&[usize], f64, f64)) {
        let k = self.decs.len();
        debug_assert_eq!(idx.len(), k + 1);
        for e in 0..self.enc_lat.len() {
            idx.fill(0);
            idx[0] = e;
            loop {
                let (num, lat) = self.eval(e, &idx[1..]);
                f(idx, num, lat);
                // Odometer over the decoder indices.
                let mut p = k;
                loop {
                    if p == 0 {
                        break;
                    }
                    idx[p] += 1;
                    if idx[p] < self.decs[p - 1].n {
                        break;
                    }
                    idx[p] = 0;
                    p -= 1;
                }
                if p == 0 {
                    break;
                }
            }
        }
    }

    /// Decode a mixed-radix configuration number (as produced by [`Space::code`]).
    pub fn decode(&self, mut code: u64, idx: &mut [usize]) {
        for p in (1..idx.len()).rev() {
            let n = self.decs[p - 1].n as u64;
            idx[p] = (code % n) as usize;
            code /= n;
        }
        idx[0] = code as usize;
    }

    /// Mixed-radix number of a configuration (`[e, d_0, ..]`, encoder most significant).
    pub fn code(&self, idx: &[usize]) -> u64 {
        let mut c = idx[0] as u64;
        for (p, dec) in self.decs.iter().enumerate() {
            c = c * dec.n as u64 + idx[p + 1] as u64;
        }
        c
    }

    /// The fastest configuration (lowest index on latency ties) and its latency.
    pub fn fastest(&self) -> (Vec<usize>, f64) {
        let argmin = |v: &[f64]| {
            v.iter()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |a, (i, &x)| if x < a.1 { (i, x) } else { a },
                )
                .0
        };
        let mut best: Option<(Vec<usize>, f64)> = None;
        for e in 0..self.enc_lat.len() {
            let mut idx = vec![e];
            idx.extend(
                self.decs
                    .iter()
                    .map(|d| argmin(&d.lat[e * d.n..(e + 1) * d.n])),
            );
            let (_, lat) = self.eval(e, &idx[1..]);
            if best.as_ref().is_none_or(|b| lat < b.1) {
                best = Some((idx, lat));
            }
        }
        best.unwrap_or_default()
    }
}

/// `true` when `a` ranks strictly before `b` (score, then latency, then indices).
#[inline]
fn better(
    a_num: f64,
    a_lat: f64,
    a_idx: &[usize],
    b_num: f64,
    b_lat: f64,
    b_idx: &[usize],
) -> bool {
    if a_num != b_num {
        return a_num > b_num;
    }
    if a_lat != b_lat {
        return a_lat < b_lat;
    }
    a_idx < b_idx
}

/// The best two configurations seen, in preallocated buffers (no allocation per offer).
struct Top2 {
    n: usize,
    num: [f64; 2],
    lat: [f64; 2],
    idx: [Vec<usize>; 2],
}

impl Top2 {
    fn new(len: usize) -> Self {
        Top2 {
            n: 0,
            num: [0.0; 2],
            lat: [0.0; 2],
            idx: [vec![0; len], vec![0; len]],
        }
    }

    #[inline]
    fn offer(&mut self, num: f64, lat: f64, idx: &[usize]) {
        if self.n == 0 || better(num, lat, idx, self.num[0], self.lat[0], &self.idx[0]) {
            if self.n > 0 {
                self.num[1] = self.num[0];
                self.lat[1] = self.lat[0];
                self.idx.swap(0, 1);
            }
            self.num[0] = num;
            self.lat[0] = lat;
            self.idx[0].copy_from_slice(idx);
            self.n = (self.n + 1).min(2);
        } else if self.n == 1 || better(num, lat, idx, self.num[1], self.lat[1], &self.idx[1]) {
            self.num[1] = num;
            self.lat[1] = lat;
            self.idx[1].copy_from_slice(idx);
            self.n = 2;
        }
    }
}

/// A search problem: what the model costs, how well it does, what the user prefers, what runs.
#[derive(Debug, Clone)]
pub struct Problem {
    latency: LatencyTable,
    metrics: MetricTable,
    preferences: Vec<f64>,
    tasks: TaskMask,
    space: Space,
}

/// Which search produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Preference-ordered decoder widths, budget to the encoder (Aich et al.).
    Paper,
    /// Exact, by enumerating every configuration.
    Exhaustive,
    /// Exact, by branch and bound.
    BranchAndBound,
}

/// How [`Problem::exact`] searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactMethod {
    /// Exhaustive up to [`AUTO_BRANCH_AND_BOUND_ABOVE`] configurations, branch and bound above.
    #[default]
    Auto,
    /// Enumerate every configuration.
    Exhaustive,
    /// Branch and bound.
    BranchAndBound,
}

/// One task's metric in a chosen configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskValue {
    /// Task name.
    pub task: String,
    /// The metric's kind (`accuracy`, `miou`, `rmse`).
    pub metric: String,
    /// Its metric at the configuration.
    pub value: f64,
}

impl TaskValue {
    /// The value as people read it: a percentage, or four decimals for an error metric
    /// (lower is better).
    pub fn display(&self) -> String {
        if crate::config::lower_is_better(&self.metric) {
            format!("{:.4}", self.value)
        } else {
            format!("{:5.1}%", 100.0 * self.value)
        }
    }
}

/// A configuration with everything predicted about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// Width indices and multipliers, encoder first.
    pub config: WidthConfig,
    /// The tasks that run.
    pub task_mask: TaskMask,
    /// Predicted latency (additive model), microseconds.
    pub latency_us: f64,
    /// Metric of each running task.
    pub task_metrics: Vec<TaskValue>,
    /// Preference-weighted score.
    pub score: f64,
}

/// The outcome of one search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// Which search.
    pub mode: Mode,
    /// The budget, microseconds.
    pub budget_us: f64,
    /// The chosen configuration.
    pub chosen: Choice,
    /// The next-best configuration the search saw, if any.
    pub runner_up: Option<Choice>,
    /// Configurations whose latency and score were evaluated.
    pub evaluated: u64,
}

/// Paper mode next to exact mode at one budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// Paper-mode answer, or `None` when paper mode found nothing (see `paper_error`).
    pub paper: Option<SearchResult>,
    /// Why paper mode found nothing.
    pub paper_error: Option<String>,
    /// The exact answer.
    pub exact: SearchResult,
    /// `exact.score - paper.score` (`>= 0`).
    pub score_gap: Option<f64>,
    /// `paper.latency_us - exact.latency_us`.
    pub latency_diff_us: Option<f64>,
}

const WIDTH_EPS: f64 = 1e-9;

impl Problem {
    /// Build a problem. `preferences` has one weight (finite, `>= 0`) per task of `metrics`;
    /// the weights of the running tasks must not all be zero. Both tables must describe the same
    /// model (hash) with the same segments and widths.
    pub fn new(
        latency: LatencyTable,
        metrics: MetricTable,
        preferences: Vec<f64>,
        tasks: TaskMask,
    ) -> Result<Self> {
        latency.validate()?;
        metrics.validate()?;
        if latency.model_hash != metrics.model_hash {
            return Err(Error::HashMismatch {
                expected: latency.model_hash.clone(),
                found: metrics.model_hash.clone(),
            });
        }
        if latency.encoder_stages != metrics.encoder_stages {
            return Err(Error::Problem(format!(
                "latency table has {} encoder stages, metric table {}",
                latency.encoder_stages, metrics.encoder_stages
            )));
        }
        if latency.segments.len() != metrics.segments.len() {
            return Err(Error::Problem(format!(
                "latency table has {} segments, metric table {}",
                latency.segments.len(),
                metrics.segments.len()
            )));
        }
        for (i, (l, m)) in latency.segments.iter().zip(&metrics.segments).enumerate() {
            let same_widths = l.widths.len() == m.widths.len()
                && l.widths
                    .iter()
                    .zip(&m.widths)
                    .all(|(a, b)| (a - b).abs() <= WIDTH_EPS);
            if l.name != m.name || !same_widths {
                return Err(Error::Problem(format!(
                    "segment {i} differs: latency table has {:?} {:?}, metric table {:?} {:?}",
                    l.name, l.widths, m.name, m.widths
                )));
            }
        }
        if preferences.len() != metrics.tasks.len() {
            return Err(Error::Problem(format!(
                "{} preference weights for {} tasks",
                preferences.len(),
                metrics.tasks.len()
            )));
        }
        for (t, &w) in preferences.iter().enumerate() {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::Problem(format!(
                    "preference of task {:?} is {w}; weights must be finite and >= 0",
                    metrics.tasks[t].name
                )));
            }
        }
        if tasks.0 == 0 {
            return Err(Error::Problem("no task runs".into()));
        }
        if let Some(bad) = tasks.iter().find(|&t| t >= metrics.tasks.len()) {
            return Err(Error::Problem(format!(
                "task mask {:#x} has bit {bad}, the model has {} tasks",
                tasks.0,
                metrics.tasks.len()
            )));
        }
        let weight_sum: f64 = tasks.iter().map(|t| preferences[t]).sum();
        if weight_sum <= 0.0 {
            return Err(Error::Problem(
                "the preference weights of the running tasks are all zero".into(),
            ));
        }
        let space = build_space(&latency, &metrics, &preferences, tasks, weight_sum);
        Ok(Problem {
            latency,
            metrics,
            preferences,
            tasks,
            space,
        })
    }

    /// Build a problem the way the command line states it: `prefer` like `digit=3,bold=1`
    /// (`None`: every task weight 1; tasks not named get 0) and `tasks` like `digit,bold` or
    /// `all` (`None`: all tasks).
    pub fn from_spec(
        latency: LatencyTable,
        metrics: MetricTable,
        prefer: Option<&str>,
        tasks: Option<&str>,
    ) -> Result<Self> {
        let preferences = match prefer {
            Some(s) => resolve_preferences(&metrics, &parse_preferences(s)?)?,
            None => vec![1.0; metrics.tasks.len()],
        };
        let mask = match tasks {
            Some(s) => parse_task_set(&metrics, s)?,
            None => TaskMask::all(metrics.tasks.len()),
        };
        Problem::new(latency, metrics, preferences, mask)
    }

    /// The latency table.
    pub fn latency(&self) -> &LatencyTable {
        &self.latency
    }

    /// The metric table.
    pub fn metrics(&self) -> &MetricTable {
        &self.metrics
    }

    /// Preference weight per task (metric-table order).
    pub fn preferences(&self) -> &[f64] {
        &self.preferences
    }

    /// The running tasks.
    pub fn tasks(&self) -> TaskMask {
        self.tasks
    }

    /// The same problem with other preference weights.
    pub fn with_preferences(&self, preferences: Vec<f64>) -> Result<Self> {
        Problem::new(
            self.latency.clone(),
            self.metrics.clone(),
            preferences,
            self.tasks,
        )
    }

    /// Number of configurations searched (encoder widths times running decoders' widths).
    pub fn config_count(&self) -> u64 {
        self.space.count()
    }

    pub(crate) fn space(&self) -> &Space {
        &self.space
    }

    /// Whether some configuration runs in at most `latency_us` and reaches at least
    /// `min_metrics[i]` (at most, for a lower-is-better metric) on the `i`-th running task (task
    /// order) — i.e. whether the point is
    /// weakly dominated by the Pareto front in `(latency, metrics)`.
    ///
    /// Exact without enumerating the space: for each encoder width, every decoder independently
    /// takes its cheapest width that reaches the metrics of its tasks; `O(E * sum of widths)`.
    /// `false` when `min_metrics` does not have one entry per running task.
    pub fn reachable(&self, latency_us: f64, min_metrics: &[f64]) -> bool {
        let sp = &self.space;
        if min_metrics.len() != sp.tasks.len() {
            return false;
        }
        'enc: for e in 0..sp.enc_lat.len() {
            let mut total = sp.overhead + sp.enc_lat[e];
            for (dec, tasks) in sp.decs.iter().zip(&sp.dec_tasks) {
                let mut best = f64::INFINITY;
                for d in 0..dec.n {
                    let l = dec.lat[e * dec.n + d];
                    if l < best
                        && tasks.iter().all(|&(i, t)| {
                            let v = self.metrics.tasks[t].values[e][d];
                            if self.metrics.lower_is_better(t) {
                                v <= min_metrics[i]
                            } else {
                                v >= min_metrics[i]
                            }
                        })
                    {
                        best = l;
                    }
                }
                total += best;
                if total > latency_us {
                    continue 'enc;
                }
            }
            return true;
        }
        false
    }

    /// The fastest configuration for the task set.
    pub fn fastest(&self) -> Choice {
        let (idx, _) = self.space.fastest();
        self.choice(&idx)
    }

    /// `Ok` when some configuration meets `budget_us`; otherwise [`Error::BudgetInfeasible`]
    /// naming the fastest configuration and its latency.
    pub fn check_budget(&self, budget_us: f64) -> Result<()> {
        let (idx, lat) = self.space.fastest();
        if budget_us.is_nan() || lat > budget_us {
            return Err(Error::BudgetInfeasible {
                budget_us,
                fastest_us: lat,
                fastest_widths: self.full_indices(&idx),
            });
        }
        Ok(())
    }

    /// Expand `[e, d_0, ..]` (running decoders only) to one index per segment.
    pub(crate) fn full_indices(&self, idx: &[usize]) -> Vec<u8> {
        let mut out = vec![0u8; self.space.n_segments];
        let counts = self.latency.stage_counts();
        for (k, w) in out.iter_mut().enumerate().take(counts.len()) {
            *w = crate::config::stage_width(&counts, idx[0], k) as u8;
        }
        for (dec, &d) in self.space.decs.iter().zip(&idx[1..]) {
            out[dec.seg] = d as u8;
        }
        out
    }

    /// Everything about configuration `[e, d_0, ..]` (running decoders only).
    pub(crate) fn choice(&self, idx: &[usize]) -> Choice {
        let sp = &self.space;
        let (num, lat) = sp.eval(idx[0], &idx[1..]);
        let indices = self.full_indices(idx);
        let multipliers = indices
            .iter()
            .zip(&self.latency.segments)
            .map(|(&i, s)| s.widths[usize::from(i)])
            .collect();
        let task_metrics = sp
            .tasks
            .iter()
            .map(|st| TaskValue {
                task: self.metrics.tasks[st.task].name.clone(),
                metric: self.metrics.tasks[st.task].metric.clone(),
                value: self.metrics.tasks[st.task].values[idx[0]][idx[1 + st.dec]],
            })
            .collect();
        Choice {
            config: WidthConfig {
                indices,
                multipliers,
            },
            task_mask: self.tasks,
            latency_us: lat,
            task_metrics,
            score: num / sp.weight_sum,
        }
    }

    /// Evaluate a configuration given as one width index per segment (decoders of tasks that do
    /// not run are ignored).
    pub fn evaluate(&self, indices: &[u8]) -> Result<Choice> {
        if indices.len() != self.space.n_segments {
            return Err(Error::invalid(
                "widths",
                format!(
                    "has {} entries, the model has {} segments",
                    indices.len(),
                    self.space.n_segments
                ),
            ));
        }
        let counts = self.latency.stage_counts();
        for (k, (&i, &n)) in indices.iter().zip(&counts).enumerate() {
            if usize::from(i) >= n {
                return Err(Error::invalid(
                    "widths",
                    format!("index {i} of encoder stage {k} out of range in {indices:?}"),
                ));
            }
        }
        let stage_idx: Vec<usize> = indices[..counts.len()]
            .iter()
            .map(|&i| usize::from(i))
            .collect();
        let mut idx = Vec::with_capacity(self.space.decs.len() + 1);
        idx.push(crate::config::encoder_config_of(&counts, &stage_idx));
        idx.extend(self.space.decs.iter().map(|d| usize::from(indices[d.seg])));
        let n_of = |p: usize| {
            if p == 0 {
                self.space.enc_lat.len()
            } else {
                self.space.decs[p - 1].n
            }
        };
        for (p, &i) in idx.iter().enumerate() {
            if i >= n_of(p) {
                return Err(Error::invalid(
                    "widths",
                    format!("index {i} out of range in {indices:?}"),
                ));
            }
        }
        Ok(self.choice(&idx))
    }

    fn result(&self, mode: Mode, budget_us: f64, top: &Top2, evaluated: u64) -> SearchResult {
        SearchResult {
            mode,
            budget_us,
            chosen: self.choice(&top.idx[0]),
            runner_up: (top.n > 1).then(|| self.choice(&top.idx[1])),
            evaluated,
        }
    }

    /// Exact search: the best configuration within `budget_us` over the whole space.
    pub fn exact(&self, budget_us: f64, method: ExactMethod) -> Result<SearchResult> {
        self.check_budget(budget_us)?;
        let use_bb = match method {
            ExactMethod::Auto => self.config_count() > AUTO_BRANCH_AND_BOUND_ABOVE,
            ExactMethod::Exhaustive => false,
            ExactMethod::BranchAndBound => true,
        };
        if use_bb {
            let (top, evaluated) = branch_and_bound(&self.space, budget_us);
            Ok(self.result(Mode::BranchAndBound, budget_us, &top, evaluated))
        } else {
            let (top, evaluated) = exhaustive(&self.space, budget_us);
            Ok(self.result(Mode::Exhaustive, budget_us, &top, evaluated))
        }
    }

    /// Paper mode (see the module documentation).
    pub fn paper(&self, budget_us: f64) -> Result<SearchResult> {
        self.check_budget(budget_us)?;
        let sp = &self.space;
        let k = sp.decs.len();
        let pmax = sp.decs.iter().map(|d| d.pref).fold(0.0, f64::max);
        // Steps 1-2: preference -> decoder width.
        let mut alloc: Vec<usize> = sp
            .decs
            .iter()
            .map(|d| {
                let q = d.pref / pmax;
                d.widths
                    .iter()
                    .position(|&m| m >= q - WIDTH_EPS)
                    .unwrap_or(d.n - 1)
            })
            .collect();
        // Least preferred first; on ties the later segment first.
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| {
            sp.decs[a]
                .pref
                .total_cmp(&sp.decs[b].pref)
                .then(sp.decs[b].seg.cmp(&sp.decs[a].seg))
        });
        let mult = |alloc: &[usize], p: usize| sp.decs[p].widths[alloc[p]];
        // Widest multiplier among decoders strictly less preferred than `p`.
        let floor = |alloc: &[usize], p: usize| {
            (0..k)
                .filter(|&o| sp.decs[o].pref < sp.decs[p].pref)
                .map(|o| mult(alloc, o))
                .fold(0.0, f64::max)
        };
        for &p in &order {
            let f = floor(&alloc, p);
            while alloc[p] + 1 < sp.decs[p].n && mult(&alloc, p) < f - WIDTH_EPS {
                alloc[p] += 1;
            }
        }
        if let Some(&p) = order
            .iter()
            .find(|&&p| mult(&alloc, p) < floor(&alloc, p) - WIDTH_EPS)
        {
            return Err(Error::PaperInfeasible(format!(
                "the width list of decoder {:?} cannot be ordered by preference with the others",
                self.latency.segments[sp.decs[p].seg].name
            )));
        }
        let mut idx = vec![0usize; k + 1];
        let mut evaluated = 0u64;
        loop {
            // Step 3: the budget goes to the encoder.
            let mut top = Top2::new(k + 1);
            idx[1..].copy_from_slice(&alloc);
            for e in 0..sp.enc_lat.len() {
                idx[0] = e;
                let (num, lat) = sp.eval(e, &alloc);
                evaluated += 1;
                if lat <= budget_us {
                    top.offer(num, lat, &idx);
                }
            }
            if top.n > 0 {
                return Ok(self.result(Mode::Paper, budget_us, &top, evaluated));
            }
            // Step 4: step the least preferred decoder that may down one width.
            let step = order.iter().copied().find(|&p| {
                alloc[p] > 0 && sp.decs[p].widths[alloc[p] - 1] >= floor(&alloc, p) - WIDTH_EPS
            });
            match step {
                Some(p) => alloc[p] -= 1,
                None => {
                    let e = (0..sp.enc_lat.len())
                        .min_by(|&a, &b| sp.enc_lat[a].total_cmp(&sp.enc_lat[b]))
                        .unwrap_or(0);
                    idx[0] = e;
                    let (_, lat) = sp.eval(e, &alloc);
                    return Err(Error::PaperInfeasible(format!(
                        "the fastest preference-ordered configuration {:?} takes {lat:.3} us, \
                         over the budget of {budget_us} us; exact mode can still search all \
                         configurations",
                        self.full_indices(&idx)
                    )));
                }
            }
        }
    }

    /// Paper mode and exact mode side by side.
    pub fn compare(&self, budget_us: f64, method: ExactMethod) -> Result<SearchReport> {
        let exact = self.exact(budget_us, method)?;
        let (paper, paper_error) = match self.paper(budget_us) {
            Ok(p) => (Some(p), None),
            Err(e @ Error::PaperInfeasible(_)) => (None, Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let score_gap = paper.as_ref().map(|p| exact.chosen.score - p.chosen.score);
        let latency_diff_us = paper
            .as_ref()
            .map(|p| p.chosen.latency_us - exact.chosen.latency_us);
        Ok(SearchReport {
            paper,
            paper_error,
            exact,
            score_gap,
            latency_diff_us,
        })
    }
}

fn build_space(
    latency: &LatencyTable,
    metrics: &MetricTable,
    preferences: &[f64],
    tasks: TaskMask,
    weight_sum: f64,
) -> Space {
    let n_enc = latency.encoder_configs();
    let mut decs: Vec<Dec> = Vec::new();
    let mut segs: Vec<usize> = tasks
        .iter()
        .filter_map(|t| metrics.task_segment(t))
        .collect();
    segs.sort_unstable();
    segs.dedup();
    for &s in &segs {
        let seg = &latency.segments[s];
        let n = seg.widths.len();
        let lat: Vec<f64> = (0..n_enc)
            .flat_map(|e| (0..n).map(move |d| (e, d)))
            .map(|(e, d)| latency.decoder_latency(s, e, d).unwrap_or(f64::INFINITY))
            .collect();
        let mut val = vec![0.0; n_enc * n];
        let mut pref = 0.0;
        for t in tasks.iter() {
            if metrics.task_segment(t) != Some(s) {
                continue;
            }
            let w = preferences[t];
            pref += w;
            let (offset, factor) = metrics.utility_scale(t);
            for (e, row) in metrics.tasks[t].values.iter().enumerate() {
                for (d, &v) in row.iter().enumerate() {
                    val[e * n + d] += w * (v - offset) * factor;
                }
            }
        }
        decs.push(Dec {
            seg: s,
            n,
            widths: seg.widths.clone(),
            min_lat: lat.iter().copied().fold(f64::INFINITY, f64::min),
            lat,
            val,
            pref,
        });
    }
    let task_list: Vec<SpaceTask> = tasks
        .iter()
        .map(|t| SpaceTask {
            task: t,
            dec: metrics
                .task_segment(t)
                .and_then(|s| segs.iter().position(|&x| x == s))
                .unwrap_or(0),
        })
        .collect();
    let mut suffix_min = vec![0.0; decs.len() + 1];
    for k in (0..decs.len()).rev() {
        suffix_min[k] = suffix_min[k + 1] + decs[k].min_lat;
    }
    let dec_tasks = (0..decs.len())
        .map(|k| {
            task_list
                .iter()
                .enumerate()
                .filter(|(_, st)| st.dec == k)
                .map(|(i, st)| (i, st.task))
                .collect()
        })
        .collect();
    Space {
        dec_tasks,
        n_segments: latency.segments.len(),
        overhead: latency.overhead_us,
        enc_lat: (0..n_enc)
            .map(|e| latency.encoder_latency(e).unwrap_or(f64::INFINITY))
            .collect(),
        decs,
        tasks: task_list,
        weight_sum,
        suffix_min,
    }
}

/// Enumerate everything. Allocation-free inside the loop.
fn exhaustive(sp: &Space, budget_us: f64) -> (Top2, u64) {
    let mut top = Top2::new(sp.decs.len() + 1);
    let mut idx = vec![0usize; sp.decs.len() + 1];
    let mut evaluated = 0u64;
    sp.for_each(&mut idx, |idx, num, lat| {
        evaluated += 1;
        if lat <= budget_us {
            top.offer(num, lat, idx);
        }
    });
    (top, evaluated)
}

fn tolerance(x: f64) -> f64 {
    1e-9 * x.abs().max(1.0)
}

/// Branch and bound; returns the same best and runner-up as [`exhaustive`].
fn branch_and_bound(sp: &Space, budget_us: f64) -> (Top2, u64) {
    let mut top = Top2::new(sp.decs.len() + 1);
    let mut idx = vec![0usize; sp.decs.len() + 1];
    let mut evaluated = 0u64;
    // Encoders in order of their latency, fastest last (wide first finds good answers early).
    for e in 0..sp.enc_lat.len() {
        idx[0] = e;
        let lat = sp.overhead + sp.enc_lat[e];
        bb_node(
            sp,
            budget_us,
            e,
            0,
            0.0,
            lat,
            &mut idx,
            &mut top,
            &mut evaluated,
        );
    }
    (top, evaluated)
}

#[allow(clippy::too_many_arguments)]
fn bb_node(
    sp: &Space,
    budget: f64,
    e: usize,
    k: usize,
    num: f64,
    lat: f64,
    idx: &mut [usize],
    top: &mut Top2,
    evaluated: &mut u64,
) {
    if k == sp.decs.len() {
        *evaluated += 1;
        if lat <= budget {
            top.offer(num, lat, idx);
        }
        return;
    }
    let tol = tolerance(budget);
    if lat + sp.suffix_min[k] > budget + tol {
        return;
    }
    if top.n == 2 {
        // Upper bound: each remaining decoder at its best value among widths that fit once the
        // other remaining decoders take their minimum latency.
        let mut ub = num;
        for dec in &sp.decs[k..] {
            let allowance = budget - lat - (sp.suffix_min[k] - dec.min_lat) + tol;
            let row = &dec.val[e * dec.n..(e + 1) * dec.n];
            let best = row
                .iter()
                .zip(&dec.lat[e * dec.n..(e + 1) * dec.n])
                .filter(|&(_, &l)| l <= allowance)
                .map(|(&v, _)| v)
                .fold(f64::NEG_INFINITY, f64::max);
            ub += best;
        }
        if ub + tolerance(top.num[1]) < top.num[1] {
            return;
        }
    }
    let dec = &sp.decs[k];
    for d in (0..dec.n).rev() {
        let l = lat + dec.lat[e * dec.n + d];
        if l + sp.suffix_min[k + 1] > budget + tol {
            continue;
        }
        idx[k + 1] = d;
        bb_node(
            sp,
            budget,
            e,
            k + 1,
            num + dec.val[e * dec.n + d],
            l,
            idx,
            top,
            evaluated,
        );
    }
}

/// The optimisation target of a Pareto front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// One task's metric (index into the metric table's tasks; the task must run).
    Task(usize),
    /// The preference-weighted score.
    Score,
}

/// A configuration on a Pareto front.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParetoPoint {
    /// Width indices and multipliers.
    pub config: WidthConfig,
    /// Predicted latency, microseconds.
    pub latency_us: f64,
    /// The objective's value.
    pub value: f64,
}

/// The non-dominated configurations for latency (lower is better) against one objective
/// (higher is better), by increasing latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParetoFront {
    /// Task name, or `score` for the weighted score.
    pub objective: String,
    /// The front, by increasing latency (and so increasing value).
    pub points: Vec<ParetoPoint>,
}

/// Indices of the non-dominated points of `(cost, value)` pairs (cost lower and value higher is
/// better), ordered by increasing cost. Points equal in both coordinates are all kept.
pub fn pareto_indices_2d(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut best = f64::NEG_INFINITY;
    let mut i = 0;
    while i < order.len() {
        let cost = points[order[i]].0;
        let gmax = points[order[i]].1;
        let mut j = i;
        while j < order.len() && points[order[j]].0 == cost {
            if gmax > best && points[order[j]].1 == gmax {
                out.push(order[j]);
            }
            j += 1;
        }
        if gmax > best {
            best = gmax;
        }
        i = j;
    }
    out
}

impl Problem {
    /// Predicted latency and weighted score of every configuration, in enumeration order.
    pub fn all_points(&self) -> Vec<(f64, f64)> {
        let sp = &self.space;
        let mut out = Vec::with_capacity(usize::try_from(sp.count()).unwrap_or(0));
        let mut idx = vec![0usize; sp.decs.len() + 1];
        sp.for_each(&mut idx, |_, num, lat| out.push((lat, num / sp.weight_sum)));
        out
    }

    /// The Pareto front of latency against `objective` over every configuration.
    pub fn pareto_front(&self, objective: Objective) -> Result<ParetoFront> {
        let sp = &self.space;
        let (name, dec_pos) = match objective {
            Objective::Score => ("score".to_string(), None),
            Objective::Task(t) => {
                let st = sp.tasks.iter().find(|st| st.task == t).ok_or_else(|| {
                    Error::Problem(format!("task {t} is not in the running task set"))
                })?;
                (self.metrics.tasks[t].name.clone(), Some((t, st.dec)))
            }
        };
        let mut pts = Vec::with_capacity(usize::try_from(sp.count()).unwrap_or(0));
        let mut codes = Vec::with_capacity(pts.capacity());
        let mut idx = vec![0usize; sp.decs.len() + 1];
        // Fronts are found on values where higher is better (a lower-is-better metric
        // negated) and report the metric as measured.
        let sign = match dec_pos {
            Some((t, _)) if self.metrics.lower_is_better(t) => -1.0,
            _ => 1.0,
        };
        sp.for_each(&mut idx, |idx, num, lat| {
            let v = match dec_pos {
                None => num / sp.weight_sum,
                Some((t, p)) => sign * self.metrics.tasks[t].values[idx[0]][idx[1 + p]],
            };
            pts.push((lat, v));
            codes.push(sp.code(idx));
        });
        let points = pareto_indices_2d(&pts)
            .into_iter()
            .map(|i| {
                sp.decode(codes[i], &mut idx);
                let c = self.choice(&idx);
                ParetoPoint {
                    config: c.config,
                    latency_us: pts[i].0,
                    value: sign * pts[i].1,
                }
            })
            .collect();
        Ok(ParetoFront {
            objective: name,
            points,
        })
    }

    /// Fronts for every running task (in task order), then for the weighted score.
    pub fn pareto_fronts(&self) -> Result<Vec<ParetoFront>> {
        let mut out = Vec::new();
        for t in self.tasks.iter() {
            out.push(self.pareto_front(Objective::Task(t))?);
        }
        out.push(self.pareto_front(Objective::Score)?);
        Ok(out)
    }
}
