//! Width-configuration search for slimmable multi-task models.
//!
//! A model has segments — the encoder (segment 0), then one decoder per task — each runnable at
//! several width multipliers. Given a [`LatencyTable`] (per segment and width, measured on a
//! target), a [`MetricTable`] (per task, its metric at every encoder × decoder width), task
//! preference weights and the set of tasks that run, a [`Problem`] answers: which width
//! configuration to run under a latency budget.
//!
//! | module | concern |
//! |---|---|
//! | [`latency`] | `edgeslim.latency/1` tables, the additive latency model and its check |
//! | [`metrics`] | `edgeslim.metrics/1` tables |
//! | [`search`] | the problem, paper mode, exact mode, Pareto fronts, preference parsing |
//! | [`sweep`](mod@sweep) | controllability: Spearman per task, hypervolume ratio |
//! | `plot` | latency vs score plots, SVG or PNG (feature `plot`, on by default) |
//! | [`bundle`] | `edgeslim.bundle/1` budget levels as JSON and as a Rust `const` table |
//! | [`npu`] | a bundle's Ethos-U command streams per level (Vela), their flash cost |
//!
//! ```
//! use edgeslim_search::*;
//!
//! let segments = vec![
//!     SegmentWidths { name: "encoder".into(), widths: vec![0.5, 1.0] },
//!     SegmentWidths { name: "digit".into(), widths: vec![0.5, 1.0] },
//!     SegmentWidths { name: "bold".into(), widths: vec![0.5, 1.0] },
//! ];
//! let latency = LatencyTable {
//!     format: latency::LATENCY_FORMAT.into(),
//!     model_hash: "abc".into(),
//!     target: "host".into(),
//!     unit: "us".into(),
//!     overhead_us: 10.0,
//!     segments: segments
//!         .iter()
//!         .zip([[100.0, 180.0], [20.0, 35.0], [15.0, 30.0]])
//!         .map(|(s, l)| SegmentLatency {
//!             name: s.name.clone(),
//!             widths: s.widths.clone(),
//!             latency_us: l.to_vec(),
//!             spread_us: None,
//!             by_encoder_us: None,
//!         })
//!         .collect(),
//!     encoder_stages: 1,
//!     configs: vec![],
//!     conversion: None,
//!     ops: vec![],
//! };
//! let tasks = vec![
//!     TaskSpec { name: "digit".into(), segment: "digit".into(), metric: "accuracy".into() },
//!     TaskSpec { name: "bold".into(), segment: "bold".into(), metric: "accuracy".into() },
//! ];
//! let mut points = vec![];
//! for e in 0..2 {
//!     for d in 0..2 {
//!         let base = 0.8 + 0.05 * e as f64 + 0.04 * d as f64;
//!         points.push(MetricPoint { encoder: e, decoder: d, task: "digit".into(), value: base });
//!         points.push(MetricPoint { encoder: e, decoder: d, task: "bold".into(), value: base - 0.1 });
//!     }
//! }
//! let metrics = MetricTable::from_points("abc", segments, tasks, points)?;
//! let prefs = resolve_preferences(&metrics, &parse_preferences("digit=3,bold=1")?)?;
//! let problem = Problem::new(latency, metrics, prefs, TaskMask::all(2))?;
//!
//! let report = problem.compare(200.0, ExactMethod::Auto)?;
//! assert!(report.exact.chosen.latency_us <= 200.0);
//! assert!(report.score_gap.unwrap() >= 0.0);
//! // Nothing fits 100 us: the error names the fastest configuration.
//! assert!(matches!(problem.exact(100.0, ExactMethod::Auto), Err(Error::BudgetInfeasible { .. })));
//! # Ok::<(), Error>(())
//! ```
#![deny(missing_docs)]

pub mod bundle;
pub mod config;
pub mod error;
pub mod latency;
pub mod metrics;
pub mod npu;
#[cfg(feature = "plot")]
pub mod plot;
pub mod search;
pub mod sweep;

pub use bundle::{BUNDLE_FORMAT, Bundle, BundleLevel, BundleMode, PreferenceWeight};
pub use config::{SegmentWidths, TaskMask, WidthConfig};
pub use error::{Error, Result};
pub use latency::{
    AdditiveCheck, Calibration, Conversion, LatencyTable, MeasuredConfig, OpLatency, SegmentLatency,
};
pub use metrics::{MetricPoint, MetricTable, TaskMetrics, TaskSpec};
pub use npu::{NpuStream, NpuStreams, NpuTransfer};
#[cfg(feature = "plot")]
pub use plot::{Panel, PlotSpec, Series, plot_panels, plot_report, plot_search};
pub use search::{
    Choice, ExactMethod, Mode, Objective, ParetoFront, ParetoPoint, Problem, SearchReport,
    SearchResult, TaskValue, pareto_indices_2d, parse_budget_us, parse_budgets_us,
    parse_preferences, parse_task_set, resolve_preferences,
};
pub use sweep::{HypervolumeMethod, HypervolumeReport, SweepOptions, SweepReport, sweep};
