//! Segments, width configurations and task masks: the vocabulary shared by every table.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most width multipliers a segment may list (indices are stored as `u8`).
pub const MAX_WIDTHS: usize = 255;
/// Most tasks a model may have (a [`TaskMask`] is a `u32`).
pub const MAX_TASKS: usize = 32;

/// A segment (the encoder, or one decoder) and its width multipliers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentWidths {
    /// Segment name, as in the slimming manifest.
    pub name: String,
    /// Width multipliers, strictly increasing, in `(0, 1]`.
    pub widths: Vec<f64>,
}

/// Check one segment list: at least one segment, unique names of `[A-Za-z0-9_-]+`, widths strictly
/// increasing in `(0, 1]`, at most [`MAX_WIDTHS`]. `field` prefixes error paths.
pub(crate) fn validate_segments<'a>(
    field: &str,
    segments: impl ExactSizeIterator<Item = (&'a str, &'a [f64])>,
) -> Result<()> {
    if segments.len() == 0 {
        return Err(Error::invalid(
            field,
            "at least one segment (the encoder) is required",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, (name, widths)) in segments.enumerate() {
        let f = format!("{field}[{i}]");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::invalid(
                format!("{f}.name"),
                format!("{name:?} is not a segment name ([A-Za-z0-9_-]+)"),
            ));
        }
        if seen.contains(&name) {
            return Err(Error::invalid(
                format!("{f}.name"),
                format!("duplicate segment {name:?}"),
            ));
        }
        seen.push(name);
        if widths.is_empty() || widths.len() > MAX_WIDTHS {
            return Err(Error::invalid(
                format!("{f}.widths"),
                format!("needs 1..={MAX_WIDTHS} multipliers, has {}", widths.len()),
            ));
        }
        for (j, &m) in widths.iter().enumerate() {
            if !(m > 0.0 && m <= 1.0) {
                return Err(Error::invalid(
                    format!("{f}.widths[{j}]"),
                    format!("multiplier {m} is not in (0, 1]"),
                ));
            }
            if j > 0 && m <= widths[j - 1] {
                return Err(Error::invalid(
                    format!("{f}.widths[{j}]"),
                    "multipliers must be strictly increasing",
                ));
            }
        }
    }
    Ok(())
}

// Encoder configurations: stage `k`'s width index is the `k`-th mixed-radix digit of a
// configuration number, stage 0 least significant; the runtime's `width::encoder` owns it.
pub use edgeslim_runtime::width::encoder::{
    config_of as encoder_config_of, configs as encoder_configs, stage_width,
};

/// `true` for metrics where lower is better (`rmse`, `abs_rel`, `latency`-like errors).
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "rmse" | "abs_rel" | "mae")
}

/// Check a table's `encoder_stages` against its number of segments.
pub(crate) fn validate_encoder_stages(stages: usize, segments: usize) -> Result<()> {
    if stages == 0 || stages > segments {
        return Err(Error::invalid(
            "encoder_stages",
            format!("{stages} is not in 1..={segments}"),
        ));
    }
    Ok(())
}

/// Serde default of `encoder_stages`.
pub(crate) fn one() -> usize {
    1
}

/// Serde skip test of `encoder_stages`.
pub(crate) fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Which tasks run: bit `i` is task `i` of the metric table (its `tasks` order).
///
/// The decoder segments that run are those of the running tasks; the encoder always runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskMask(pub u32);

impl TaskMask {
    /// Every one of `n` tasks (`n <= 32`).
    pub fn all(n: usize) -> Self {
        if n >= 32 {
            TaskMask(u32::MAX)
        } else {
            TaskMask((1u32 << n) - 1)
        }
    }

    /// Whether task `i` runs.
    pub fn contains(self, i: usize) -> bool {
        i < 32 && self.0 & (1 << i) != 0
    }

    /// Indices of the running tasks, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..32).filter(move |&i| self.contains(i))
    }

    /// Number of running tasks.
    pub fn count(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// One width index per segment (encoder first) and the multipliers they stand for.
///
/// Decoders of tasks that do not run are reported at index 0; their width is irrelevant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthConfig {
    /// Width index per segment.
    pub indices: Vec<u8>,
    /// Width multiplier per segment (`widths[indices[s]]`).
    pub multipliers: Vec<f64>,
}
