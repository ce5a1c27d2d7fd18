//! Metric tables (`edgeslim.metrics/1`): per task, its metric at every (encoder configuration,
//! decoder width) pair. Decoders are independent, so a task's metric depends only on those. An
//! encoder of several stages (`encoder_stages`) has one configuration per combination of its
//! stages' widths ([`crate::config::encoder_configs`]); with one stage it is the encoder width.
//!
//! `edgeslim eval` fills one by running the model on an eval set; here is the structure, its
//! validation and a constructor from evaluated points.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{
    MAX_TASKS, SegmentWidths, encoder_configs, is_one, lower_is_better, one, validate_segments,
};
use crate::error::{Error, Result, parse_json, read_text, to_json, write_text};

/// The `format` string of a metric table.
pub const METRICS_FORMAT: &str = "edgeslim.metrics/1";

/// One task's metric table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// Task name (unique), as in the manifest.
    pub name: String,
    /// The decoder segment that computes it (never the encoder).
    pub segment: String,
    /// Metric kind: `accuracy` or `miou` (higher is better), `rmse` (lower is better).
    pub metric: String,
    /// `values[e][d]`: the metric at encoder configuration `e` and decoder width index `d`.
    pub values: Vec<Vec<f64>>,
}

/// Metric tables of every task of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricTable {
    /// Always [`METRICS_FORMAT`].
    pub format: String,
    /// Hash of the compiled model that was evaluated.
    pub model_hash: String,
    /// Segments, encoder stages first, with their width multipliers.
    pub segments: Vec<SegmentWidths>,
    /// Number of encoder stages: the first `encoder_stages` segments (default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub encoder_stages: usize,
    /// Tasks; a task's position is its bit in a [`TaskMask`](crate::TaskMask).
    pub tasks: Vec<TaskMetrics>,
}

/// One evaluated point: task `task` at encoder width index `encoder`, decoder width index
/// `decoder` scored `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Encoder configuration index (the encoder width index with one stage).
    pub encoder: usize,
    /// Width index of the task's decoder.
    pub decoder: usize,
    /// Task name.
    pub task: String,
    /// Metric value (finite; higher is better).
    pub value: f64,
}

/// A task declared to [`MetricTable::from_points`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Task name.
    pub name: String,
    /// Decoder segment name.
    pub segment: String,
    /// Metric kind, e.g. `accuracy`.
    pub metric: String,
}

impl MetricTable {
    /// Build a table from evaluated points. Every (encoder, decoder) cell of every task must be
    /// given exactly once; errors name the missing, duplicate or out-of-range point.
    pub fn from_points(
        model_hash: &str,
        segments: Vec<SegmentWidths>,
        tasks: Vec<TaskSpec>,
        points: impl IntoIterator<Item = MetricPoint>,
    ) -> Result<Self> {
        Self::from_points_staged(model_hash, segments, 1, tasks, points)
    }

    /// [`from_points`](Self::from_points) for an encoder of `encoder_stages` stages.
    pub fn from_points_staged(
        model_hash: &str,
        segments: Vec<SegmentWidths>,
        encoder_stages: usize,
        tasks: Vec<TaskSpec>,
        points: impl IntoIterator<Item = MetricPoint>,
    ) -> Result<Self> {
        validate_segments(
            "segments",
            segments
                .iter()
                .map(|s| (s.name.as_str(), s.widths.as_slice())),
        )?;
        crate::config::validate_encoder_stages(encoder_stages, segments.len())?;
        let counts: Vec<usize> = segments[..encoder_stages]
            .iter()
            .map(|s| s.widths.len())
            .collect();
        let n_enc = encoder_configs(&counts);
        let mut cells: Vec<Vec<Vec<Option<f64>>>> = Vec::with_capacity(tasks.len());
        for (t, spec) in tasks.iter().enumerate() {
            let seg = segments
                .iter()
                .position(|s| s.name == spec.segment)
                .filter(|&i| i >= encoder_stages)
                .ok_or_else(|| {
                    Error::invalid(
                        format!("tasks[{t}].segment"),
                        format!("{:?} is not a decoder segment", spec.segment),
                    )
                })?;
            cells.push(vec![vec![None; segments[seg].widths.len()]; n_enc]);
        }
        for (k, p) in points.into_iter().enumerate() {
            let t =
                tasks
                    .iter()
                    .position(|s| s.name == p.task)
                    .ok_or_else(|| Error::UnknownTask {
                        name: p.task.clone(),
                        known: tasks
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    })?;
            let slot = cells[t]
                .get_mut(p.encoder)
                .and_then(|row| row.get_mut(p.decoder))
                .ok_or_else(|| {
                    Error::invalid(
                        format!("points[{k}]"),
                        format!(
                            "width indices (encoder {}, decoder {}) out of range for task {:?}",
                            p.encoder, p.decoder, p.task
                        ),
                    )
                })?;
            if slot.is_some() {
                return Err(Error::invalid(
                    format!("points[{k}]"),
                    format!(
                        "duplicate point for task {:?} at (encoder {}, decoder {})",
                        p.task, p.encoder, p.decoder
                    ),
                ));
            }
            *slot = Some(p.value);
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (spec, grid) in tasks.into_iter().zip(cells) {
            let mut values = Vec::with_capacity(grid.len());
            for (e, row) in grid.into_iter().enumerate() {
                let mut r = Vec::with_capacity(row.len());
                for (d, v) in row.into_iter().enumerate() {
                    r.push(v.ok_or_else(|| {
                        Error::invalid(
                            "points",
                            format!(
                                "missing point for task {:?} at (encoder {e}, decoder {d})",
                                spec.name
                            ),
                        )
                    })?);
                }
                values.push(r);
            }
            out.push(TaskMetrics {
                name: spec.name,
                segment: spec.segment,
                metric: spec.metric,
                values,
            });
        }
        let table = MetricTable {
            format: METRICS_FORMAT.to_string(),
            model_hash: model_hash.to_string(),
            segments,
            encoder_stages,
            tasks: out,
        };
        table.validate()?;
        Ok(table)
    }

    /// Parse and validate a table from JSON text. `what` names the source in errors.
    pub fn from_json_str(what: &str, text: &str) -> Result<Self> {
        let table: MetricTable = parse_json(what, text)?;
        table.validate()?;
        Ok(table)
    }

    /// Load and validate a table from a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_json_str(&path.display().to_string(), &text)
    }

    /// Serialize to pretty JSON (after validating).
    pub fn to_json_string(&self) -> Result<String> {
        self.validate()?;
        to_json("metric table", self)
    }

    /// Validate, then write to a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_text(path, &self.to_json_string()?)
    }

    /// Index of the task called `name`.
    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.name == name)
    }

    /// Comma-separated task names (for error messages).
    pub fn task_names(&self) -> String {
        self.tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Width counts of the encoder stages.
    pub fn stage_counts(&self) -> Vec<usize> {
        self.segments
            .iter()
            .take(self.encoder_stages)
            .map(|s| s.widths.len())
            .collect()
    }

    /// Number of encoder configurations (rows of every task's `values`).
    pub fn encoder_configs(&self) -> usize {
        encoder_configs(&self.stage_counts())
    }

    /// Whether task `t`'s metric is better when lower (`rmse`).
    pub fn lower_is_better(&self, t: usize) -> bool {
        self.tasks
            .get(t)
            .is_some_and(|task| lower_is_better(&task.metric))
    }

    /// `(offset, factor)` of task `t`'s utility `u = (v - offset) * factor`: its metric mapped
    /// linearly so that the worst value in its table is 0 and the best 1 (the factor is
    /// negative where lower is better; 0 when every value is the same). Scores weigh tasks by
    /// preference on this common scale, whatever their metrics' units and directions.
    pub fn utility_scale(&self, t: usize) -> (f64, f64) {
        let (lo, hi) = self.tasks[t]
            .values
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let range = hi - lo;
        if range.is_nan() || range <= 0.0 {
            (lo, 0.0)
        } else if self.lower_is_better(t) {
            (hi, -1.0 / range)
        } else {
            (lo, 1.0 / range)
        }
    }

    /// Task `t`'s utility at `(e, d)` (see [`utility_scale`](Self::utility_scale)): higher is
    /// better for every task, in `[0, 1]`.
    pub fn utility(&self, t: usize, e: usize, d: usize) -> f64 {
        let (offset, factor) = self.utility_scale(t);
        (self.tasks[t].values[e][d] - offset) * factor
    }

    /// Segment index of task `t`'s decoder (valid after [`validate`](Self::validate)).
    pub fn task_segment(&self, t: usize) -> Option<usize> {
        let name = &self.tasks.get(t)?.segment;
        self.segments.iter().position(|s| &s.name == name)
    }

    /// Check every rule of the format; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.format != METRICS_FORMAT {
            return Err(Error::invalid(
                "format",
                format!("expected {METRICS_FORMAT:?}, found {:?}", self.format),
            ));
        }
        if self.model_hash.is_empty() {
            return Err(Error::invalid("model_hash", "must not be empty"));
        }
        validate_segments(
            "segments",
            self.segments
                .iter()
                .map(|s| (s.name.as_str(), s.widths.as_slice())),
        )?;
        if self.tasks.is_empty() || self.tasks.len() > MAX_TASKS {
            return Err(Error::invalid(
                "tasks",
                format!("needs 1..={MAX_TASKS} tasks, has {}", self.tasks.len()),
            ));
        }
        crate::config::validate_encoder_stages(self.encoder_stages, self.segments.len())?;
        let n_enc = self.encoder_configs();
        for (t, task) in self.tasks.iter().enumerate() {
            let f = format!("tasks[{t}]");
            if task.name.is_empty() {
                return Err(Error::invalid(format!("{f}.name"), "must not be empty"));
            }
            if self.tasks[..t].iter().any(|o| o.name == task.name) {
                return Err(Error::invalid(
                    format!("{f}.name"),
                    format!("duplicate task {:?}", task.name),
                ));
            }
            let seg = match self.task_segment(t) {
                Some(s) if s < self.encoder_stages => {
                    return Err(Error::invalid(
                        format!("{f}.segment"),
                        format!(
                            "{:?} is an encoder stage; tasks computed in the encoder are not searchable",
                            task.segment
                        ),
                    ));
                }
                Some(s) => s,
                None => {
                    return Err(Error::invalid(
                        format!("{f}.segment"),
                        format!("no segment called {:?}", task.segment),
                    ));
                }
            };
            let n_dec = self.segments[seg].widths.len();
            if task.values.len() != n_enc {
                return Err(Error::invalid(
                    format!("{f}.values"),
                    format!(
                        "has {} rows, the encoder has {n_enc} configurations",
                        task.values.len()
                    ),
                ));
            }
            for (e, row) in task.values.iter().enumerate() {
                if row.len() != n_dec {
                    return Err(Error::invalid(
                        format!("{f}.values[{e}]"),
                        format!(
                            "has {} entries, decoder {:?} has {n_dec} widths",
                            row.len(),
                            task.segment
                        ),
                    ));
                }
                for (d, v) in row.iter().enumerate() {
                    if !v.is_finite() {
                        return Err(Error::invalid(
                            format!("{f}.values[{e}][{d}]"),
                            format!("{v} is not finite"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
