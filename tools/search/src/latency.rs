//! Latency tables (`edgeslim.latency/1`): per-segment latency per width, the additive model and
//! its check against directly measured configurations. The format is documented in
//! `docs/latency-table.md`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::validate_segments;
use crate::error::{Error, Result, parse_json, read_text, to_json, write_text};

/// The `format` string of a latency table.
pub const LATENCY_FORMAT: &str = "edgeslim.latency/1";

/// The only latency unit of format 1.
pub const LATENCY_UNIT: &str = "us";

/// Latency of one segment at each of its widths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentLatency {
    /// Segment name; segment 0 is the encoder, every other one a decoder.
    pub name: String,
    /// Width multipliers, strictly increasing, in `(0, 1]`.
    pub widths: Vec<f64>,
    /// Latency in microseconds at each width (finite, `>= 0`), typically a median.
    pub latency_us: Vec<f64>,
    /// Optional spread per width (e.g. the interquartile range), microseconds, `>= 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_us: Option<Vec<f64>>,
    /// Decoders only, optional: latency at each encoder width `e` (rows) and decoder width `d`
    /// (columns), microseconds. A decoder's first layer reads the encoder's active channels,
    /// so its cost grows with the encoder's width; when present, this table is used instead of
    /// `latency_us` (which then holds the mean over encoder widths).
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
    /// Segments, encoder first.
    pub segments: Vec<SegmentLatency>,
    /// Optional directly measured whole configurations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<MeasuredConfig>,
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
                if i == 0 {
                    return Err(Error::invalid(
                        f,
                        "only decoders depend on the encoder's width",
                    ));
                }
                let n_enc = self.segments[0].widths.len();
                if rows.len() != n_enc || rows.iter().any(|r| r.len() != s.widths.len()) {
                    return Err(Error::invalid(
                        f,
                        format!(
                            "must be {n_enc} rows (encoder widths) of {} values (decoder widths)",
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
        Ok(())
    }

    /// Index of the segment called `name`.
    pub fn segment_index(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
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
                Some(0) => {
                    return Err(Error::invalid(
                        format!("{field}.tasks[{t}]"),
                        format!("{name:?} is the encoder, which always runs"),
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
    /// `overhead_us + L_enc(widths[0]) + sum over running decoders s of L_s(widths[s])`.
    ///
    /// `decoders` are segment indices (`>= 1`) of the decoders that run.
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
        let e = usize::from(widths[0]);
        let lat = |s: usize| -> Result<f64> {
            let seg = self
                .segments
                .get(s)
                .ok_or_else(|| Error::invalid("decoders", format!("no segment {s}")))?;
            let d = usize::from(widths[s]);
            (if s == 0 {
                seg.latency_us.get(d).copied()
            } else {
                seg.at(e, d)
            })
            .ok_or_else(|| {
                Error::invalid(
                    format!("widths[{s}]"),
                    format!(
                        "index {} out of range for segment {:?}",
                        widths[s], seg.name
                    ),
                )
            })
        };
        let mut total = self.overhead_us + lat(0)?;
        for &s in decoders {
            if s == 0 {
                return Err(Error::invalid(
                    "decoders",
                    "segment 0 is the encoder, which always runs",
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
