//! Latency tables (`edgeslim.latency/1`): per-segment latency per width, the additive model and
//! its check against directly measured configurations. The format is documented in
//! `docs/latency-table.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{encoder_configs, is_one, one, stage_width, validate_segments};
use crate::error::{Error, Result, parse_json, read_text, to_json, write_text};

/// The `format` string of a latency table.
pub const LATENCY_FORMAT: &str = "edgeslim.latency/1";

/// The only latency unit of format 1.
pub const LATENCY_UNIT: &str = "us";

/// Latency of one segment at each of its widths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentLatency {
    /// Segment name; the first [`LatencyTable::encoder_stages`] segments are the encoder's
    /// stages, every other one a decoder.
    pub name: String,
    /// Width multipliers, strictly increasing, in `(0, 1]`.
    pub widths: Vec<f64>,
    /// Latency in microseconds at each width (finite, `>= 0`), typically a median.
    pub latency_us: Vec<f64>,
    /// Optional spread per width (e.g. the interquartile range), microseconds, `>= 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_us: Option<Vec<f64>>,
    /// Optional, for every segment but the first: latency at each width `e` of the segment it
    /// reads ([`LatencyTable::reads`]: the last encoder stage for a decoder, the stage before for
    /// a stage) (rows) and its own width `d` (columns), microseconds. Its first layer reads that
    /// segment's active channels, so its cost grows with that width; when present, this table
    /// is used instead of `latency_us` (which then holds the mean over the rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_encoder_us: Option<Vec<Vec<f64>>>,
}

impl SegmentLatency {
    /// Latency at this segment's width `d` when the encoder runs at width `e`.
    pub fn at(&self, e: usize, d: usize) -> Option<f64> {
        match &self.by_encoder_us {
            Some(rows) => rows.get(e).and_then(|r| r.get(d)).copied(),
            None => self.latency_us.get(d).copied(),
        }
    }
}

/// One whole configuration timed directly, used to check the additive model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredConfig {
    /// Width index per segment (encoder first); one entry per segment.
    pub widths: Vec<u8>,
    /// Names of the decoder segments that ran (in this table a task is named by its decoder).
    pub tasks: Vec<String>,
    /// Measured latency in microseconds (`> 0`).
    pub latency_us: f64,
}

/// The counter of a device log whose ticks are instructions: QEMU with `-icount shift=0`.
pub const COUNTER_QEMU_ICOUNT: &str = "qemu-icount";

/// The counter of a device log whose ticks are core clock cycles: a real board's SysTick.
pub const COUNTER_CYCLES: &str = "cycles";

/// The calibration loop of a device log: a loop of known length, and the ticks it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// Instructions the loop executes.
    pub instructions: u64,
    /// Ticks it took.
    pub ticks: u64,
}

/// How the ticks of a device log became microseconds: every latency of the table is
/// `ticks * us_per_tick`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversion {
    /// [`COUNTER_QEMU_ICOUNT`] (a tick is [`instructions_per_tick`](Self::instructions_per_tick)
    /// instructions, timed at [`cycles_per_instruction`](Self::cycles_per_instruction) and
    /// [`clock_mhz`](Self::clock_mhz)) or [`COUNTER_CYCLES`] (a tick is one cycle of the core
    /// clock at `clock_mhz`).
    pub counter: String,
    /// `qemu-icount` only: instructions per tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions_per_tick: Option<f64>,
    /// `qemu-icount` only: the cycles per instruction assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles_per_instruction: Option<f64>,
    /// The core clock assumed (`qemu-icount`) or counted (`cycles`), MHz.
    pub clock_mhz: f64,
    /// Microseconds per tick: `instructions_per_tick * cycles_per_instruction / clock_mhz` for
    /// `qemu-icount`, `1 / clock_mhz` for `cycles`.
    pub us_per_tick: f64,
    /// The log's calibration loop, which told the counter apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

impl Conversion {
    fn validate(&self) -> Result<()> {
        let positive = |f: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(
                    format!("conversion.{f}"),
                    format!("{v} is not a finite number > 0"),
                ))
            }
        };
        positive("clock_mhz", self.clock_mhz)?;
        positive("us_per_tick", self.us_per_tick)?;
        let want = match self.counter.as_str() {
            COUNTER_QEMU_ICOUNT => {
                let (Some(ipt), Some(cpi)) =
                    (self.instructions_per_tick, self.cycles_per_instruction)
                else {
                    return Err(Error::invalid(
                        "conversion",
                        "a qemu-icount conversion states instructions_per_tick and \
                         cycles_per_instruction",
                    ));
                };
                positive("instructions_per_tick", ipt)?;
                positive("cycles_per_instruction", cpi)?;
                ipt * cpi / self.clock_mhz
            }
            COUNTER_CYCLES => {
                if self.instructions_per_tick.is_some() || self.cycles_per_instruction.is_some() {
                    return Err(Error::invalid(
                        "conversion",
                        "a cycles conversion counts cycles: no instructions_per_tick or \
                         cycles_per_instruction",
                    ));
                }
                1.0 / self.clock_mhz
            }
            other => {
                return Err(Error::invalid(
                    "conversion.counter",
                    format!(
                        "expected {COUNTER_QEMU_ICOUNT:?} or {COUNTER_CYCLES:?}, found {other:?}"
                    ),
                ));
            }
        };
        if (self.us_per_tick - want).abs() > 1e-12 * want {
            return Err(Error::invalid(
                "conversion.us_per_tick",
                format!(
                    "{} does not follow from the conversion stated ({want})",
                    self.us_per_tick
                ),
            ));
        }
        Ok(())
    }
}

/// Latency of one op of the model (tables converted from a device log): the same layout as
/// its segment's [`SegmentLatency`], and the ops of a segment add up to the segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpLatency {
    /// Index of the op in the model.
    pub index: usize,
    /// The op's kind (`Conv2d`, `FullyConnected`, ...).
    pub kind: String,
    /// Name of its segment.
    pub segment: String,
    /// Latency at each width of its segment, microseconds (a decoder's op: the mean over
    /// encoder widths, as its segment's).
    pub latency_us: Vec<f64>,
    /// Decoder ops only: latency at encoder width `e` (rows) and its segment's width `d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_encoder_us: Option<Vec<Vec<f64>>>,
}

/// The sums of a segment's op latencies: per width, and per encoder width and width.
type OpSums = (Vec<f64>, Vec<Vec<f64>>);

/// A latency table for one model on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// Always [`LATENCY_FORMAT`].
    pub format: String,
    /// Hash of the compiled model the table was measured on.
    pub model_hash: String,
    /// Target name, e.g. `host`, `cortex-m7`, `qemu-cortex-m4`.
    pub target: String,
    /// Always [`LATENCY_UNIT`] (microseconds).
    pub unit: String,
    /// Fixed cost of one inference independent of widths (input copy, dispatch), microseconds.
    pub overhead_us: f64,
    /// Segments, encoder stages first.
    pub segments: Vec<SegmentLatency>,
    /// Number of encoder stages: the first `encoder_stages` segments, which always run (default
    /// 1: the first segment is the encoder).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub encoder_stages: usize,
    /// Optional directly measured whole configurations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<MeasuredConfig>,
    /// Tables converted from a device log: how its ticks became microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    /// Optional per-op latencies, by increasing op index; those of a segment add up to its
    /// latency at every width (and every encoder width).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<OpLatency>,
}

/// How well the additive model predicts the measured configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdditiveCheck {
    /// Number of measured configurations compared.
    pub configs: usize,
    /// Median of `|predicted - measured| / measured`.
    pub median_rel_error: f64,
    /// Largest relative error.
    pub worst_rel_error: f64,
    /// Index (into [`LatencyTable::configs`]) of the worst-predicted configuration.
    pub worst_index: usize,
    /// Predicted latency per measured configuration, in order.
    pub predicted_us: Vec<f64>,
}

fn check_nonneg(field: String, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{v} is not a finite latency >= 0"),
        ))
    }
}

impl LatencyTable {
    /// Parse and validate a table from JSON text. `what` names the source in errors.
    pub fn from_json_str(what: &str, text: &str) -> Result<Self> {
        let table: LatencyTable = parse_json(what, text)?;
        table.validate()?;
        Ok(table)
    }

    /// Load and validate a table from a file (e.g. one measured on a board, `--from-table`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_json_str(&path.display().to_string(), &text)
    }

    /// Serialize to pretty JSON (after validating).
    pub fn to_json_string(&self) -> Result<String> {
        self.validate()?;
        to_json("latency table", self)
    }

    /// Validate, then write to a file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_text(path, &self.to_json_string()?)
    }

    /// Check every rule of the format; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.format != LATENCY_FORMAT {
            return Err(Error::invalid(
                "format",
                format!("expected {LATENCY_FORMAT:?}, found {:?}", self.format),
            ));
        }
        if self.model_hash.is_empty() {
            return Err(Error::invalid("model_hash", "must not be empty"));
        }
        if self.target.is_empty() {
            return Err(Error::invalid("target", "must not be empty"));
        }
        if self.unit != LATENCY_UNIT {
            return Err(Error::invalid(
                "unit",
                format!(
                    "expected {LATENCY_UNIT:?} (microseconds), found {:?}",
                    self.unit
                ),
            ));
        }
        check_nonneg("overhead_us".into(), self.overhead_us)?;
        validate_segments(
            "segments",
            self.segments
                .iter()
                .map(|s| (s.name.as_str(), s.widths.as_slice())),
        )?;
        crate::config::validate_encoder_stages(self.encoder_stages, self.segments.len())?;
        for (i, s) in self.segments.iter().enumerate() {
            if s.latency_us.len() != s.widths.len() {
                return Err(Error::invalid(
                    format!("segments[{i}].latency_us"),
                    format!(
                        "has {} entries, widths has {}",
                        s.latency_us.len(),
                        s.widths.len()
                    ),
                ));
            }
            for (j, &v) in s.latency_us.iter().enumerate() {
                check_nonneg(format!("segments[{i}].latency_us[{j}]"), v)?;
            }
            if let Some(spread) = &s.spread_us {
                if spread.len() != s.widths.len() {
                    return Err(Error::invalid(
                        format!("segments[{i}].spread_us"),
                        format!(
                            "has {} entries, widths has {}",
                            spread.len(),
                            s.widths.len()
                        ),
                    ));
                }
                for (j, &v) in spread.iter().enumerate() {
                    check_nonneg(format!("segments[{i}].spread_us[{j}]"), v)?;
                }
            }
            if let Some(rows) = &s.by_encoder_us {
                let f = format!("segments[{i}].by_encoder_us");
                let Some(r) = self.reads(i) else {
                    return Err(Error::invalid(
                        f,
                        "the first encoder stage reads no other segment's width",
                    ));
                };
                let n_enc = self.segments[r].widths.len();
                if rows.len() != n_enc || rows.iter().any(|r| r.len() != s.widths.len()) {
                    return Err(Error::invalid(
                        f,
                        format!(
                            "must be {n_enc} rows (widths of {:?}) of {} values (own widths)",
                            self.segments[r].name,
                            s.widths.len()
                        ),
                    ));
                }
                for (e, row) in rows.iter().enumerate() {
                    for (d, &v) in row.iter().enumerate() {
                        check_nonneg(format!("{f}[{e}][{d}]"), v)?;
                    }
                }
            }
        }
        for (c, cfg) in self.configs.iter().enumerate() {
            self.decoder_indices(&format!("configs[{c}]"), &cfg.widths, &cfg.tasks)?;
            if !(cfg.latency_us.is_finite() && cfg.latency_us > 0.0) {
                return Err(Error::invalid(
                    format!("configs[{c}].latency_us"),
                    format!("{} is not a finite latency > 0", cfg.latency_us),
                ));
            }
        }
        if let Some(c) = &self.conversion {
            c.validate()?;
        }
        self.validate_ops()
    }

    /// The per-op rules: each op's layout is its segment's, indices increase, and the ops of
    /// a segment add up to the segment's latency (to a relative 1e-9: sums of microseconds).
    fn validate_ops(&self) -> Result<()> {
        // sums[s]: (latency per width, per width of the segment read and width) of the ops of
        // segment s.
        let mut sums: Vec<Option<OpSums>> = vec![None; self.segments.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let f = format!("ops[{i}]");
            if i > 0 && op.index <= self.ops[i - 1].index {
                return Err(Error::invalid(
                    format!("{f}.index"),
                    format!("{} does not follow {}", op.index, self.ops[i - 1].index),
                ));
            }
            let s = self.segment_index(&op.segment).ok_or_else(|| {
                Error::invalid(
                    format!("{f}.segment"),
                    format!("no segment called {:?}", op.segment),
                )
            })?;
            let n = self.segments[s].widths.len();
            let n_enc = self.reads(s).map_or(0, |r| self.segments[r].widths.len());
            if op.latency_us.len() != n {
                return Err(Error::invalid(
                    format!("{f}.latency_us"),
                    format!(
                        "has {} entries, segment {:?} has {n} widths",
                        op.latency_us.len(),
                        op.segment
                    ),
                ));
            }
            for (j, &v) in op.latency_us.iter().enumerate() {
                check_nonneg(format!("{f}.latency_us[{j}]"), v)?;
            }
            let has_rows = self.segments[s].by_encoder_us.is_some();
            match &op.by_encoder_us {
                Some(_) if !has_rows => {
                    return Err(Error::invalid(
                        format!("{f}.by_encoder_us"),
                        format!("segment {:?} has no by_encoder_us", op.segment),
                    ));
                }
                None if has_rows => {
                    return Err(Error::invalid(
                        format!("{f}.by_encoder_us"),
                        format!("missing: segment {:?} has one", op.segment),
                    ));
                }
                Some(rows) if rows.len() != n_enc || rows.iter().any(|r| r.len() != n) => {
                    return Err(Error::invalid(
                        format!("{f}.by_encoder_us"),
                        format!("must be {n_enc} rows (encoder widths) of {n} values"),
                    ));
                }
                _ => {}
            }
            let rows = op.by_encoder_us.as_deref().unwrap_or(&[]);
            for (e, row) in rows.iter().enumerate() {
                for (d, &v) in row.iter().enumerate() {
                    check_nonneg(format!("{f}.by_encoder_us[{e}][{d}]"), v)?;
                }
            }
            let (lat, by) = sums[s].get_or_insert_with(|| {
                (
                    vec![0.0; n],
                    vec![vec![0.0; n]; if has_rows { n_enc } else { 0 }],
                )
            });
            for (acc, v) in lat.iter_mut().zip(&op.latency_us) {
                *acc += v;
            }
            for (acc_row, row) in by.iter_mut().zip(rows) {
                for (acc, v) in acc_row.iter_mut().zip(row) {
                    *acc += v;
                }
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-3);
        for (s, sum) in sums.iter().enumerate() {
            let Some((lat, by)) = sum else { continue };
            let seg = &self.segments[s];
            for (d, (&got, &want)) in lat.iter().zip(&seg.latency_us).enumerate() {
                if !close(got, want) {
                    return Err(Error::invalid(
                        "ops",
                        format!(
                            "the ops of segment {:?} add up to {got} us at width {d}, the segment \
                             takes {want}",
                            seg.name
                        ),
                    ));
                }
            }
            for (e, (got_row, want_row)) in by
                .iter()
                .zip(seg.by_encoder_us.as_deref().unwrap_or(&[]))
                .enumerate()
            {
                for (d, (&got, &want)) in got_row.iter().zip(want_row).enumerate() {
                    if !close(got, want) {
                        return Err(Error::invalid(
                            "ops",
                            format!(
                                "the ops of segment {:?} add up to {got} us at encoder width {e}, \
                                 width {d}; the segment takes {want}",
                                seg.name
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Index of the segment called `name`.
    pub fn segment_index(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
    }

    /// The segment whose width segment `s`'s `by_encoder_us` rows are indexed by: the stage
    /// before for an encoder stage (none for the first), the last stage for a decoder.
    pub fn reads(&self, s: usize) -> Option<usize> {
        if s == 0 || s >= self.segments.len() {
            None
        } else if s < self.encoder_stages {
            Some(s - 1)
        } else {
            Some(self.encoder_stages.max(1) - 1)
        }
    }

    /// Width counts of the encoder stages.
    pub fn stage_counts(&self) -> Vec<usize> {
        self.segments
            .iter()
            .take(self.encoder_stages)
            .map(|s| s.widths.len())
            .collect()
    }

    /// Number of encoder configurations (products of the stages' width counts).
    pub fn encoder_configs(&self) -> usize {
        encoder_configs(&self.stage_counts())
    }

    /// Latency of segment `s` at its width `d` when the segment it reads is at width `r`
    /// (ignored without `by_encoder_us`).
    fn at_read(&self, s: usize, r: usize, d: usize) -> Option<f64> {
        self.segments.get(s)?.at(r, d)
    }

    /// Latency of the encoder (every stage) at encoder configuration `e`.
    pub fn encoder_latency(&self, e: usize) -> Option<f64> {
        let counts = self.stage_counts();
        let mut total = 0.0;
        for k in 0..self.encoder_stages {
            let d = stage_width(&counts, e, k);
            let r = self.reads(k).map_or(d, |p| stage_width(&counts, e, p));
            total += self.at_read(k, r, d)?;
        }
        Some(total)
    }

    /// Latency of decoder `s` at width `d` under encoder configuration `e`.
    pub fn decoder_latency(&self, s: usize, e: usize, d: usize) -> Option<f64> {
        let counts = self.stage_counts();
        let r = self.reads(s).map_or(0, |p| stage_width(&counts, e, p));
        self.at_read(s, r, d)
    }

    /// Check a width vector and resolve decoder names to segment indices.
    fn decoder_indices(&self, field: &str, widths: &[u8], names: &[String]) -> Result<Vec<usize>> {
        if widths.len() != self.segments.len() {
            return Err(Error::invalid(
                format!("{field}.widths"),
                format!(
                    "has {} entries, the table has {} segments",
                    widths.len(),
                    self.segments.len()
                ),
            ));
        }
        for (s, (&w, seg)) in widths.iter().zip(&self.segments).enumerate() {
            if usize::from(w) >= seg.widths.len() {
                return Err(Error::invalid(
                    format!("{field}.widths[{s}]"),
                    format!(
                        "index {w} out of range: segment {:?} has {} widths",
                        seg.name,
                        seg.widths.len()
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for (t, name) in names.iter().enumerate() {
            match self.segment_index(name) {
                Some(i) if i < self.encoder_stages => {
                    return Err(Error::invalid(
                        format!("{field}.tasks[{t}]"),
                        format!("{name:?} is an encoder stage, which always runs"),
                    ));
                }
                Some(i) if out.contains(&i) => {
                    return Err(Error::invalid(
                        format!("{field}.tasks[{t}]"),
                        format!("decoder {name:?} listed twice"),
                    ));
                }
                Some(i) => out.push(i),
                None => {
                    return Err(Error::invalid(
                        format!("{field}.tasks[{t}]"),
                        format!("no decoder segment called {name:?}"),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Predicted latency of a configuration with the additive model:
    /// `overhead_us + sum over encoder stages k of L_k(widths[k]) + sum over running decoders s
    /// of L_s(widths[s])`, each segment at the width of the segment it reads where it has
    /// `by_encoder_us`.
    ///
    /// `decoders` are segment indices (past the encoder stages) of the decoders that run.
    pub fn predict(&self, widths: &[u8], decoders: &[usize]) -> Result<f64> {
        if widths.len() != self.segments.len() {
            return Err(Error::invalid(
                "widths",
                format!(
                    "has {} entries, the table has {} segments",
                    widths.len(),
                    self.segments.len()
                ),
            ));
        }
        let lat = |s: usize| -> Result<f64> {
            let seg = self
                .segments
                .get(s)
                .ok_or_else(|| Error::invalid("decoders", format!("no segment {s}")))?;
            let d = usize::from(widths[s]);
            let r = self.reads(s).map_or(d, |p| usize::from(widths[p]));
            seg.at(r, d).ok_or_else(|| {
                Error::invalid(
                    format!("widths[{s}]"),
                    format!(
                        "index {} out of range for segment {:?}",
                        widths[s], seg.name
                    ),
                )
            })
        };
        let mut total = self.overhead_us;
        for k in 0..self.encoder_stages {
            total += lat(k)?;
        }
        for &s in decoders {
            if s < self.encoder_stages {
                return Err(Error::invalid(
                    "decoders",
                    format!("segment {s} is an encoder stage, which always runs"),
                ));
            }
            total += lat(s)?;
        }
        Ok(total)
    }

    /// [`predict`](Self::predict) with decoders given by name.
    pub fn predict_named(&self, widths: &[u8], decoders: &[String]) -> Result<f64> {
        let idx = self.decoder_indices("config", widths, decoders)?;
        self.predict(widths, &idx)
    }

    /// Compare the additive model with the directly measured configurations.
    /// `None` when the table has no measured configurations.
    pub fn check_additive(&self) -> Result<Option<AdditiveCheck>> {
        if self.configs.is_empty() {
            return Ok(None);
        }
        let mut predicted = Vec::with_capacity(self.configs.len());
        let mut errors = Vec::with_capacity(self.configs.len());
        for (c, cfg) in self.configs.iter().enumerate() {
            let idx = self.decoder_indices(&format!("configs[{c}]"), &cfg.widths, &cfg.tasks)?;
            let p = self.predict(&cfg.widths, &idx)?;
            predicted.push(p);
            errors.push((p - cfg.latency_us).abs() / cfg.latency_us);
        }
        let (worst_index, worst) =
            errors
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |acc, (i, e)| {
                        if e > acc.1 { (i, e) } else { acc }
                    },
                );
        let mut sorted = errors.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
        };
        Ok(Some(AdditiveCheck {
            configs: n,
            median_rel_error: median,
            worst_rel_error: worst,
            worst_index,
            predicted_us: predicted,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-segment device table with a conversion and ops that add up.
    fn device_table() -> LatencyTable {
        let json = r#"{"format": "edgeslim.latency/1", "model_hash": "h", "target": "m4",
            "unit": "us", "overhead_us": 1.6,
            "segments": [{"name": "encoder", "widths": [0.5, 1.0], "latency_us": [16.0, 32.0]},
                         {"name": "digit", "widths": [1.0], "latency_us": [12.0],
                          "by_encoder_us": [[8.0], [16.0]]}],
            "conversion": {"counter": "qemu-icount", "instructions_per_tick": 40.0,
                           "cycles_per_instruction": 1.0, "clock_mhz": 25.0, "us_per_tick": 1.6,
                           "calibration": {"instructions": 2000000, "ticks": 50000}},
            "ops": [{"index": 0, "kind": "Conv2d", "segment": "encoder", "latency_us": [6.4, 12.8]},
                    {"index": 1, "kind": "Conv2d", "segment": "encoder", "latency_us": [9.6, 19.2]},
                    {"index": 2, "kind": "FullyConnected", "segment": "digit",
                     "latency_us": [12.0], "by_encoder_us": [[8.0], [16.0]]}]}"#;
        LatencyTable::from_json_str("t", json).unwrap()
    }

    fn invalid(t: &LatencyTable) -> String {
        t.validate().unwrap_err().to_string()
    }

    #[test]
    fn device_tables_round_trip_and_old_tables_still_load() {
        let t = device_table();
        let again = LatencyTable::from_json_str("again", &t.to_json_string().unwrap()).unwrap();
        assert_eq!(again, t);
        let mut old = t.clone();
        old.conversion = None;
        old.ops.clear();
        let text = old.to_json_string().unwrap();
        assert!(!text.contains("conversion") && !text.contains("\"ops\""));
        assert_eq!(LatencyTable::from_json_str("old", &text).unwrap(), old);
    }

    #[test]
    fn ops_must_add_up_to_their_segment() {
        let mut t = device_table();
        t.ops[1].latency_us[0] = 9.0;
        assert!(invalid(&t).contains("add up to"), "{}", invalid(&t));
        let mut t = device_table();
        if let Some(rows) = t.ops[2].by_encoder_us.as_mut() {
            rows[1][0] = 15.0;
        }
        assert!(invalid(&t).contains("encoder width 1"), "{}", invalid(&t));
        let mut t = device_table();
        t.ops.swap(0, 1);
        assert!(invalid(&t).contains("ops[1].index"), "{}", invalid(&t));
        let mut t = device_table();
        t.ops[2].segment = "bold".into();
        assert!(invalid(&t).contains("ops[2].segment"), "{}", invalid(&t));
        let mut t = device_table();
        t.ops[2].by_encoder_us = None;
        assert!(
            invalid(&t).contains("ops[2].by_encoder_us"),
            "{}",
            invalid(&t)
        );
    }

    #[test]
    fn the_conversion_must_follow_from_what_it_states() {
        let mut t = device_table();
        if let Some(c) = t.conversion.as_mut() {
            c.us_per_tick = 1.5;
        }
        assert!(invalid(&t).contains("us_per_tick"), "{}", invalid(&t));
        let mut t = device_table();
        if let Some(c) = t.conversion.as_mut() {
            c.counter = COUNTER_CYCLES.into();
        }
        assert!(invalid(&t).contains("counts cycles"), "{}", invalid(&t));
        if let Some(c) = t.conversion.as_mut() {
            c.instructions_per_tick = None;
            c.cycles_per_instruction = None;
            c.us_per_tick = 1.0 / c.clock_mhz;
        }
        t.validate().unwrap();
        if let Some(c) = t.conversion.as_mut() {
            c.counter = "sundial".into();
        }
        assert!(
            invalid(&t).contains("conversion.counter"),
            "{}",
            invalid(&t)
        );
    }
}
