//! Controllability sweep: at one budget, run paper mode for many preference vectors and measure
//! how well the preferences control the outcome.
//!
//! - **Controllability per task**: the Spearman rank correlation (ties get their average rank)
//!   between the task's preference weight and its achieved metric over the sweep. `1` means
//!   raising a task's preference never lowers its metric rank; undefined (`None`) when either
//!   side is constant.
//! - **Hypervolume ratio**: the hypervolume dominated by the chosen configurations divided by
//!   that of the exhaustive Pareto front, both in the space `(latency, m_1, .., m_T)` of the
//!   running tasks, latency minimised and metrics maximised. The reference point is
//!   `(budget_us, min m_1, .., min m_T)`, each minimum taken over the task's whole metric table
//!   (every value any configuration can reach): a configuration adds volume by being faster than
//!   the budget and better than the worst metric. Configurations over the budget are outside
//!   the box. The ratio is in `[0, 1]`; 1 means the sweep reaches the whole front.
//!   Computed exactly (enumerated front; `O(n log n)` in 3-D, slicing above) when the space
//!   within the budget is small enough, otherwise estimated by Monte Carlo over the box between
//!   the ideal point and the reference, with an exact dominance test against the whole space
//!   ([`Problem::reachable`]); the report says which, with the estimate's standard error.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::search::{Choice, Problem};

/// Average ranks (1-based) of `v`; tied values share the mean of their ranks.
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share rank mean(i+1 ..= j+1).
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation of `x` and `y` (Pearson correlation of their average ranks).
/// `None` when the lengths differ, there are fewer than two pairs, or a side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

/// `a` weakly dominates `b` (minimisation in every coordinate).
fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

/// The non-dominated subset of `points` (minimisation); of equal points one is kept.
pub fn nondominated(points: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut sorted: Vec<&Vec<f64>> = points.iter().collect();
    // Sorting lexicographically means no point is dominated by a later one unless equal.
    sorted.sort_by(|a, b| {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut front: Vec<Vec<f64>> = Vec::new();
    for p in sorted {
        if !front.iter().any(|f| dominates(f, p)) {
            front.push(p.clone());
        }
    }
    front
}

/// Hypervolume dominated by `points` and bounded by `reference`, minimisation in every
/// coordinate: the volume of the union of boxes `[p, reference]`. Points not strictly better
/// than the reference in every coordinate add nothing.
///
/// Exact: a sweep with a sorted staircase in 3-D (`O(n log n)`), slicing along the first
/// coordinate above that (HSO): cost grows like `n^(d-2) log n`.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let inside: Vec<Vec<f64>> = points
        .iter()
        .filter(|p| p.len() == reference.len() && p.iter().zip(reference).all(|(x, r)| x < r))
        .cloned()
        .collect();
    hv_rec(inside, reference)
}

fn hv_rec(mut pts: Vec<Vec<f64>>, r: &[f64]) -> f64 {
    if pts.is_empty() {
        return 0.0;
    }
    let d = r.len();
    if d == 1 {
        return r[0] - pts.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
    }
    if d == 3 {
        return hv3(&pts, r);
    }
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
    if d == 2 {
        let (mut area, mut best_y) = (0.0, r[1]);
        for p in &pts {
            if p[1] < best_y {
                area += (r[0] - p[0]) * (best_y - p[1]);
                best_y = p[1];
            }
        }
        return area;
    }
    // Slices along coordinate 0: between consecutive x values the cross-section is the
    // (d-1)-dimensional hypervolume of the points seen so far; keep those non-dominated.
    let mut volume = 0.0;
    let mut set: Vec<Vec<f64>> = Vec::new();
    for i in 0..pts.len() {
        let q = &pts[i][1..];
        if !set.iter().any(|s| dominates(s, q)) {
            set.retain(|s| !dominates(q, s));
            set.push(q.to_vec());
        }
        let next = if i + 1 < pts.len() {
            pts[i + 1][0]
        } else {
            r[0]
        };
        let width = next - pts[i][0];
        if width > 0.0 {
            volume += width * hv_rec(set.clone(), &r[1..]);
        }
    }
    volume
}

/// Order-preserving map of an `f64` to a `u64` key (total order, as `f64::total_cmp`).
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

/// 3-D hypervolume by a sweep along the third coordinate, keeping the 2-D staircase of the
/// points seen so far in a sorted map and its area up to date on each insertion:
/// `O(n log n)`. Points are strictly inside the reference box.
fn hv3(pts: &[Vec<f64>], r: &[f64]) -> f64 {
    let mut order: Vec<&Vec<f64>> = pts.iter().collect();
    order.sort_by(|a, b| a[2].total_cmp(&b[2]));
    // x key -> (x, y); x ascending, y strictly descending.
    let mut stairs: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let (mut area, mut volume) = (0.0, 0.0);
    let mut prev_z = order.first().map_or(r[2], |p| p[2]);
    let mut dead: Vec<u64> = Vec::new();
    for p in order {
        volume += area * (p[2] - prev_z);
        prev_z = p[2];
        let (x, y, kx) = (p[0], p[1], key(p[0]));
        // Dominated in (x, y) by an earlier (lower z) point: adds nothing.
        if let Some((_, &(_, py))) = stairs.range(..=kx).next_back()
            && py <= y
        {
            continue;
        }
        // Height of the staircase just left of x.
        let mut h = stairs.range(..kx).next_back().map_or(r[1], |(_, v)| v.1);
        let mut t = x;
        let mut added = 0.0;
        let mut stopped = false;
        dead.clear();
        for (&k, &(ex, ey)) in stairs.range(kx..) {
            added += (ex - t) * (h - y);
            if ey < y {
                stopped = true;
                break;
            }
            // (ex, ey) is dominated by (x, y).
            dead.push(k);
            t = ex;
            h = ey;
        }
        if !stopped {
            added += (r[0] - t) * (h - y);
        }
        for k in &dead {
            stairs.remove(k);
        }
        stairs.insert(kx, (x, y));
        area += added;
    }
    volume + area * (r[2] - prev_z)
}

/// Every preference vector on the simplex with step `1 / divisions`: all `w` with
/// `w_i = k_i / divisions`, `k_i >= 0` integers summing to `divisions`.
pub fn simplex_grid(tasks: usize, divisions: u32) -> Vec<Vec<f64>> {
    fn rec(left: u32, slots: usize, div: u32, cur: &mut Vec<f64>, out: &mut Vec<Vec<f64>>) {
        if slots == 1 {
            cur.push(f64::from(left) / f64::from(div));
            out.push(cur.clone());
            cur.pop();
            return;
        }
        for k in (0..=left).rev() {
            cur.push(f64::from(k) / f64::from(div));
            rec(left - k, slots - 1, div, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    if tasks > 0 && divisions > 0 {
        rec(divisions, tasks, divisions, &mut Vec::new(), &mut out);
    }
    out
}

/// Number of points [`simplex_grid`] yields: `C(divisions + tasks - 1, tasks - 1)`.
pub fn simplex_grid_len(tasks: usize, divisions: u32) -> u128 {
    if tasks == 0 || divisions == 0 {
        return 0;
    }
    let (n, k) = (u128::from(divisions) + tasks as u128 - 1, tasks as u128 - 1);
    // acc * (n - i) / (i + 1) stays an integer (a binomial coefficient) at every step.
    (0..k).fold(1u128, |acc, i| {
        acc.checked_mul(n - i).map_or(u128::MAX, |v| v / (i + 1))
    })
}

/// Sweep settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOptions {
    /// Simplex step `1 / divisions` for the preference vectors.
    pub divisions: u32,
    /// Show a progress bar on stderr when the sweep has at least 200 vectors.
    pub progress: bool,
    /// Compute the hypervolume exactly when at most this many configurations fit the budget
    /// and the exact computation is affordable; otherwise estimate it.
    pub max_exact_hypervolume_configs: usize,
    /// Samples of the Monte Carlo estimate (0: skip the hypervolume when it cannot be exact).
    pub hypervolume_samples: u32,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            divisions: 10,
            progress: false,
            max_exact_hypervolume_configs: 10_000,
            hypervolume_samples: 50_000,
        }
    }
}

/// How a hypervolume was computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HypervolumeMethod {
    /// Exactly, from the enumerated Pareto front.
    Exact,
    /// Estimated from uniform samples of the box between the ideal point and the reference.
    /// Whether the front dominates a sample is decided exactly over the whole space without
    /// enumerating it (per encoder width, each decoder's cheapest width that reaches the
    /// sample's metrics), so the estimate has sampling error only.
    MonteCarlo {
        /// Number of samples.
        samples: u32,
        /// Standard error of the ratio (binomial, over the samples the front dominates).
        ratio_std_error: f64,
    },
}

/// Most preference vectors a sweep runs.
pub const MAX_SWEEP_VECTORS: u128 = 1_000_000;

/// Paper mode at one preference vector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// Weight per task of the metric table (zero for tasks that do not run).
    pub preferences: Vec<f64>,
    /// The paper-mode choice, if paper mode found one.
    pub choice: Option<Choice>,
    /// Why it found none.
    pub error: Option<String>,
}

/// Controllability of one running task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskControllability {
    /// Task name.
    pub task: String,
    /// Spearman correlation of its weight with its achieved metric (`None`: undefined).
    pub spearman: Option<f64>,
}

/// Hypervolume of the sweep's choices against the exhaustive front.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HypervolumeReport {
    /// Axis names: `latency_us`, then the running tasks.
    pub axes: Vec<String>,
    /// Reference point in those axes (latency: the budget; tasks: their worst metric).
    pub reference: Vec<f64>,
    /// Hypervolume of the distinct chosen configurations.
    pub chosen: f64,
    /// Hypervolume of the exhaustive Pareto front (all configurations within the budget).
    pub front: f64,
    /// `chosen / front` (0 when the front has no volume).
    pub ratio: f64,
    /// Number of configurations on the exhaustive front (exact method only).
    pub front_points: Option<usize>,
    /// Exact or estimated.
    pub method: HypervolumeMethod,
}

/// The outcome of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// The budget, microseconds.
    pub budget_us: f64,
    /// One entry per preference vector.
    pub points: Vec<SweepPoint>,
    /// Per running task.
    pub controllability: Vec<TaskControllability>,
    /// The hypervolume comparison, unless skipped.
    pub hypervolume: Option<HypervolumeReport>,
    /// Why the hypervolume was skipped.
    pub hypervolume_skipped: Option<String>,
}

/// Sweep the preference simplex at `budget_us` with paper mode (see the module documentation).
/// The problem's own preferences are ignored; its task set is kept.
pub fn sweep(problem: &Problem, budget_us: f64, opts: &SweepOptions) -> Result<SweepReport> {
    let running: Vec<usize> = problem.tasks().iter().collect();
    let n_tasks = problem.metrics().tasks.len();
    let count = simplex_grid_len(running.len(), opts.divisions);
    if count == 0 || count > MAX_SWEEP_VECTORS {
        return Err(Error::Problem(format!(
            "a sweep with {} tasks and {} divisions has {count} preference vectors; \
             use 1..={MAX_SWEEP_VECTORS}",
            running.len(),
            opts.divisions
        )));
    }
    // Fails early, with the fastest configuration, when nothing fits.
    problem.check_budget(budget_us)?;
    let vectors = simplex_grid(running.len(), opts.divisions);
    let bar = (opts.progress && vectors.len() >= 200).then(|| {
        let bar = ProgressBar::new(vectors.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("sweep {bar:40} {pos}/{len} {eta}") {
            bar.set_style(style);
        }
        bar
    });
    let mut points = Vec::with_capacity(vectors.len());
    for v in vectors {
        let mut prefs = vec![0.0; n_tasks];
        for (&t, &w) in running.iter().zip(&v) {
            prefs[t] = w;
        }
        let p = problem.with_preferences(prefs.clone())?;
        let point = match p.paper(budget_us) {
            Ok(r) => SweepPoint {
                preferences: prefs,
                choice: Some(r.chosen),
                error: None,
            },
            Err(e @ Error::PaperInfeasible(_)) => SweepPoint {
                preferences: prefs,
                choice: None,
                error: Some(e.to_string()),
            },
            Err(e) => return Err(e),
        };
        points.push(point);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let controllability = running
        .iter()
        .enumerate()
        .map(|(pos, &t)| {
            // Against the task's utility (its metric, negated where lower is better): a
            // controllable model gets better at a task as its preference grows.
            let sign = if problem.metrics().lower_is_better(t) {
                -1.0
            } else {
                1.0
            };
            let (x, y): (Vec<f64>, Vec<f64>) = points
                .iter()
                .filter_map(|p| {
                    let c = p.choice.as_ref()?;
                    Some((p.preferences[t], sign * c.task_metrics[pos].value))
                })
                .unzip();
            TaskControllability {
                task: problem.metrics().tasks[t].name.clone(),
                spearman: spearman(&x, &y),
            }
        })
        .collect();
    let (hypervolume, hypervolume_skipped) =
        match sweep_hypervolume(problem, budget_us, &points, opts) {
            Ok(h) => (Some(h), None),
            Err(reason) => (None, Some(reason)),
        };
    Ok(SweepReport {
        budget_us,
        points,
        controllability,
        hypervolume,
        hypervolume_skipped,
    })
}

fn sweep_hypervolume(
    problem: &Problem,
    budget_us: f64,
    points: &[SweepPoint],
    opts: &SweepOptions,
) -> std::result::Result<HypervolumeReport, String> {
    let metrics = problem.metrics();
    let running: Vec<usize> = problem.tasks().iter().collect();
    // Minimisation coordinates: latency, then negated utilities (metrics, negated once more where
    // lower is better; in `Space::tasks` order, which is the running tasks' order).
    let mut reference = vec![budget_us];
    let mut ideal = vec![problem.fastest().latency_us];
    let signs: Vec<f64> = running
        .iter()
        .map(|&t| {
            if metrics.lower_is_better(t) {
                -1.0
            } else {
                1.0
            }
        })
        .collect();
    for (&t, &sign) in running.iter().zip(&signs) {
        let values = metrics.tasks[t].values.iter().flatten().map(|&v| sign * v);
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        reference.push(-lo);
        ideal.push(-hi);
    }
    let chosen: Vec<Vec<f64>> = points
        .iter()
        .filter_map(|p| p.choice.as_ref())
        .map(|c| {
            let mut v = vec![c.latency_us];
            v.extend(c.task_metrics.iter().zip(&signs).map(|(m, s)| -s * m.value));
            v
        })
        .collect();
    let chosen = nondominated(&chosen);
    let mut axes = vec!["latency_us".to_string()];
    axes.extend(running.iter().map(|&t| metrics.tasks[t].name.clone()));
    // Report the reference in natural units (metrics as measured).
    let natural: Vec<f64> = reference
        .iter()
        .enumerate()
        .map(|(i, &r)| if i == 0 { r } else { -signs[i - 1] * r })
        .collect();
    let ratio = |c: f64, f: f64| if f > 0.0 { c / f } else { 0.0 };

    if let Some(front) = exact_front(problem, budget_us, opts.max_exact_hypervolume_configs) {
        let d = reference.len() as i32;
        let n = front.len().max(2) as f64;
        let cost = n.powi((d - 2).max(1)) * n.log2();
        if cost <= 3e8 {
            let hv_front = hypervolume(&front, &reference);
            let hv_chosen = hypervolume(&chosen, &reference);
            return Ok(HypervolumeReport {
                axes,
                reference: natural,
                chosen: hv_chosen,
                front: hv_front,
                ratio: ratio(hv_chosen, hv_front),
                front_points: Some(front.len()),
                method: HypervolumeMethod::Exact,
            });
        }
    }
    if opts.hypervolume_samples == 0 {
        return Err("the exact hypervolume is too expensive and hypervolume_samples is 0".into());
    }
    // Monte Carlo over the box [ideal, reference].
    let box_volume: f64 = ideal.iter().zip(&reference).map(|(a, b)| b - a).product();
    let mut rng = SplitMix(0x005E_ED0F_ED6E_5113);
    let (mut in_front, mut in_chosen) = (0u64, 0u64);
    let mut x = vec![0.0; reference.len()];
    let mut need = vec![0.0; running.len()];
    for _ in 0..opts.hypervolume_samples {
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = ideal[i] + rng.unit() * (reference[i] - ideal[i]);
        }
        for (n, xi) in need.iter_mut().zip(&x[1..]) {
            *n = -xi;
        }
        if problem.reachable(x[0], &need) {
            in_front += 1;
            if chosen.iter().any(|c| dominates(c, &x)) {
                in_chosen += 1;
            }
        }
    }
    let n = f64::from(opts.hypervolume_samples);
    let (f, c) = (in_front as f64, in_chosen as f64);
    let p = ratio(c, f);
    Ok(HypervolumeReport {
        axes,
        reference: natural,
        chosen: box_volume.max(0.0) * c / n,
        front: box_volume.max(0.0) * f / n,
        ratio: p,
        front_points: None,
        method: HypervolumeMethod::MonteCarlo {
            samples: opts.hypervolume_samples,
            ratio_std_error: if f > 0.0 {
                (p * (1.0 - p) / f).sqrt()
            } else {
                0.0
            },
        },
    })
}

/// The Pareto front (minimisation coordinates) of the configurations within the budget, or
/// `None` when more than `limit` configurations fit.
fn exact_front(problem: &Problem, budget_us: f64, limit: usize) -> Option<Vec<Vec<f64>>> {
    let sp = problem.space();
    let metrics = problem.metrics();
    let mut all: Vec<Vec<f64>> = Vec::new();
    let mut idx = vec![0usize; sp.decs.len() + 1];
    let mut too_many = false;
    sp.for_each(&mut idx, |idx, _, lat| {
        if lat <= budget_us && !too_many {
            if all.len() >= limit {
                too_many = true;
                return;
            }
            // Negated metrics, as measured (once more where lower is better): the chosen
            // points' coordinates.
            let mut v = vec![lat];
            for st in &sp.tasks {
                let m = metrics.tasks[st.task].values[idx[0]][idx[1 + st.dec]];
                v.push(if metrics.lower_is_better(st.task) {
                    m
                } else {
                    -m
                });
            }
            all.push(v);
        }
    });
    (!too_many).then(|| nondominated(&all))
}

/// splitmix64, for reproducible Monte Carlo estimates and bootstrap resamples.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`0` for `n = 0`), by remainder.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}
