//! Deployment bundles (`edgeslim.bundle/1`): budget levels mapped to width configurations, as
//! JSON for tools and as a Rust source file for firmware.
//!
//! The Rust file holds only items, so firmware includes it inside a module. For a model hash of
//! the form `esm-crc32:<crc>:<bytes>` (what `edgeslim` writes) it also holds the two numbers
//! `MODEL_BODY_CRC` and `MODEL_BYTES`, which firmware compares with the runtime's
//! `Model::hash_parts()` before using any level:
//!
//! ```ignore
//! mod levels {
//!     include!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/levels.rs"));
//! }
//! let model = Model::parse(BLOB)?;
//! // Refuse levels searched for another model (O(1), no allocation).
//! if model.hash_parts() != (levels::MODEL_BODY_CRC, levels::MODEL_BYTES) {
//!     return Err(BundleMismatch);
//! }
//! // Largest level whose budget fits, else the cheapest.
//! let (_, widths, mask) = levels::LEVELS
//!     .iter()
//!     .rev()
//!     .find(|l| l.0 <= budget_us)
//!     .unwrap_or(&levels::LEVELS[0]);
//! let widths = WidthConfig::from_indices(widths)?;
//! let out = interp.run(input, &widths, TaskMask(*mask))?;
//! ```
//!
//! (`model.matches_hash(levels::MODEL_HASH)` does the same from the string.)

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{MAX_TASKS, SegmentWidths, validate_segments};
use crate::error::{Error, Result, parse_json, read_text, to_json, write_text};
use crate::npu::NpuStreams;
use crate::search::{ExactMethod, Problem, SearchResult};

/// The `format` string of a bundle.
pub const BUNDLE_FORMAT: &str = "edgeslim.bundle/1";

/// Which search chose the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleMode {
    /// Paper mode (preference-ordered decoders, budget to the encoder).
    Paper,
    /// Exact mode.
    Exact,
}

/// A task's preference weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceWeight {
    /// Task name.
    pub task: String,
    /// Weight (finite, `>= 0`).
    pub weight: f64,
}

/// One budget level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleLevel {
    /// The budget, microseconds.
    pub budget_us: u32,
    /// Width index per segment, encoder first.
    pub widths: Vec<u8>,
    /// The multipliers those indices stand for.
    pub multipliers: Vec<f64>,
    /// Running tasks (bit `i` = `tasks[i]`).
    pub task_mask: u32,
    /// Predicted latency, microseconds (`<= budget_us`).
    pub predicted_latency_us: f64,
    /// Preference-weighted score.
    pub score: f64,
}

/// Budget levels for one model, target and preference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Hash of the model the levels are for.
    pub model_hash: String,
    /// Target the latency table was measured on.
    pub target: String,
    /// Which search chose the levels.
    pub mode: BundleMode,
    /// Preference weight per task.
    pub preferences: Vec<PreferenceWeight>,
    /// Segments, encoder first.
    pub segments: Vec<SegmentWidths>,
    /// Task names in task-mask bit order.
    pub tasks: Vec<String>,
    /// Levels by strictly increasing budget.
    pub levels: Vec<BundleLevel>,
    /// For an Ethos-U board: the Vela command streams of each level's segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npu: Option<NpuStreams>,
}

impl Bundle {
    /// Search one configuration per budget (any order; duplicates are an error). A budget no
    /// configuration meets is an [`Error::BudgetInfeasible`].
    pub fn build(problem: &Problem, budgets_us: &[u32], mode: BundleMode) -> Result<Self> {
        let mut budgets = budgets_us.to_vec();
        budgets.sort_unstable();
        if budgets.is_empty() {
            return Err(Error::invalid("budgets", "at least one budget is required"));
        }
        if let Some(w) = budgets.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::invalid(
                "budgets",
                format!("budget {} us given twice", w[0]),
            ));
        }
        let mut levels = Vec::with_capacity(budgets.len());
        for &b in &budgets {
            let r: SearchResult = match mode {
                BundleMode::Paper => problem.paper(f64::from(b))?,
                BundleMode::Exact => problem.exact(f64::from(b), ExactMethod::Auto)?,
            };
            let c = r.chosen;
            levels.push(BundleLevel {
                budget_us: b,
                widths: c.config.indices,
                multipliers: c.config.multipliers,
                task_mask: c.task_mask.0,
                predicted_latency_us: c.latency_us,
                score: c.score,
            });
        }
        let metrics = problem.metrics();
        let bundle = Bundle {
            format: BUNDLE_FORMAT.to_string(),
            model_hash: metrics.model_hash.clone(),
            target: problem.latency().target.clone(),
            mode,
            preferences: metrics
                .tasks
                .iter()
                .zip(problem.preferences())
                .map(|(t, &w)| PreferenceWeight {
                    task: t.name.clone(),
                    weight: w,
                })
                .collect(),
            segments: metrics.segments.clone(),
            tasks: metrics.tasks.iter().map(|t| t.name.clone()).collect(),
            levels,
            npu: None,
        };
        bundle.validate()?;
        Ok(bundle)
    }

    /// Parse and validate a bundle, requiring it to be for `expected_model_hash`.
    pub fn from_json_str(what: &str, text: &str, expected_model_hash: &str) -> Result<Self> {
        let bundle: Bundle = parse_json(what, text)?;
        bundle.validate()?;
        if bundle.model_hash != expected_model_hash {
            return Err(Error::HashMismatch {
                expected: expected_model_hash.to_string(),
                found: bundle.model_hash,
            });
        }
        Ok(bundle)
    }

    /// Load and validate a bundle file, requiring it to be for `expected_model_hash`.
    pub fn load(path: &Path, expected_model_hash: &str) -> Result<Self> {
        let text = read_text(path)?;
        Self::from_json_str(&path.display().to_string(), &text, expected_model_hash)
    }

    /// Serialize to pretty JSON (after validating).
    pub fn to_json_string(&self) -> Result<String> {
        self.validate()?;
        to_json("bundle", self)
    }

    /// Validate, then write the JSON form.
    pub fn save_json(&self, path: &Path) -> Result<()> {
        write_text(path, &self.to_json_string()?)
    }

    /// Validate, then write the Rust form ([`to_rust_source`](Self::to_rust_source)).
    pub fn save_rust(&self, path: &Path) -> Result<()> {
        self.validate()?;
        write_text(path, &self.to_rust_source())
    }

    /// Check every rule of the format; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.format != BUNDLE_FORMAT {
            return Err(Error::invalid(
                "format",
                format!("expected {BUNDLE_FORMAT:?}, found {:?}", self.format),
            ));
        }
        for (field, v) in [("model_hash", &self.model_hash), ("target", &self.target)] {
            if v.is_empty() || v.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field,
                    "must be non-empty without control characters",
                ));
            }
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
        for (i, t) in self.tasks.iter().enumerate() {
            if t.is_empty() || self.tasks[..i].contains(t) {
                return Err(Error::invalid(
                    format!("tasks[{i}]"),
                    format!("{t:?} is empty or a duplicate"),
                ));
            }
        }
        for (i, p) in self.preferences.iter().enumerate() {
            if !self.tasks.contains(&p.task) {
                return Err(Error::invalid(
                    format!("preferences[{i}].task"),
                    format!("unknown task {:?}", p.task),
                ));
            }
            if !p.weight.is_finite() || p.weight < 0.0 {
                return Err(Error::invalid(
                    format!("preferences[{i}].weight"),
                    format!("{} is not a finite weight >= 0", p.weight),
                ));
            }
        }
        if self.levels.is_empty() {
            return Err(Error::invalid("levels", "at least one level is required"));
        }
        let all_tasks = if self.tasks.len() == 32 {
            u32::MAX
        } else {
            (1u32 << self.tasks.len()) - 1
        };
        for (l, level) in self.levels.iter().enumerate() {
            let f = format!("levels[{l}]");
            if l > 0 && level.budget_us <= self.levels[l - 1].budget_us {
                return Err(Error::invalid(
                    format!("{f}.budget_us"),
                    "budgets must be strictly increasing",
                ));
            }
            if level.widths.len() != self.segments.len()
                || level.multipliers.len() != self.segments.len()
            {
                return Err(Error::invalid(
                    format!("{f}.widths"),
                    format!(
                        "widths/multipliers have {}/{} entries, there are {} segments",
                        level.widths.len(),
                        level.multipliers.len(),
                        self.segments.len()
                    ),
                ));
            }
            for (s, seg) in self.segments.iter().enumerate() {
                let i = usize::from(level.widths[s]);
                match seg.widths.get(i) {
                    None => {
                        return Err(Error::invalid(
                            format!("{f}.widths[{s}]"),
                            format!(
                                "index {i} out of range: segment {:?} has {} widths",
                                seg.name,
                                seg.widths.len()
                            ),
                        ));
                    }
                    Some(&m) if (m - level.multipliers[s]).abs() > 1e-9 => {
                        return Err(Error::invalid(
                            format!("{f}.multipliers[{s}]"),
                            format!(
                                "{} does not match width index {i} ({m})",
                                level.multipliers[s]
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if level.task_mask == 0 || level.task_mask & !all_tasks != 0 {
                return Err(Error::invalid(
                    format!("{f}.task_mask"),
                    format!(
                        "{:#x} must be non-zero with bits only for the {} tasks",
                        level.task_mask,
                        self.tasks.len()
                    ),
                ));
            }
            if !level.predicted_latency_us.is_finite()
                || level.predicted_latency_us > f64::from(level.budget_us) * (1.0 + 1e-12)
            {
                return Err(Error::invalid(
                    format!("{f}.predicted_latency_us"),
                    format!(
                        "{} is over the budget {}",
                        level.predicted_latency_us, level.budget_us
                    ),
                ));
            }
        }
        if let Some(n) = &self.npu {
            crate::npu::validate(self, n)?;
        }
        Ok(())
    }

    /// A Rust source file of items (`MODEL_HASH`, `SEGMENTS`, `LEVELS`) for firmware to
    /// `include!` inside a module. `LEVELS` is `[(budget_us, [u8; SEGMENTS], task_mask)]` by
    /// increasing budget. When `model_hash` is `esm-crc32:<crc>:<bytes>`, also
    /// `MODEL_BODY_CRC: u32` and `MODEL_BYTES: usize`, for an integer check at load.
    pub fn to_rust_source(&self) -> String {
        let mut s = String::new();
        let prefs: Vec<String> = self
            .preferences
            .iter()
            .map(|p| format!("{}={}", p.task, p.weight))
            .collect();
        // `write!` to a String cannot fail.
        let _ = writeln!(
            s,
            "// Generated by edgeslim-search ({BUNDLE_FORMAT}). Do not edit."
        );
        let _ = writeln!(
            s,
            "// model {:?}, target {:?}, mode {}, preferences {:?}",
            self.model_hash,
            self.target,
            match self.mode {
                BundleMode::Paper => "paper",
                BundleMode::Exact => "exact",
            },
            prefs.join(",")
        );
        for (i, seg) in self.segments.iter().enumerate() {
            let role = if i == 0 { "encoder" } else { "decoder" };
            let _ = writeln!(
                s,
                "// segment {i} ({role}) {:?}: widths {:?}",
                seg.name, seg.widths
            );
        }
        for (i, t) in self.tasks.iter().enumerate() {
            let _ = writeln!(s, "// task mask bit {i}: {t:?}");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "/// Hash of the model these levels were searched for.");
        let _ = writeln!(s, "pub const MODEL_HASH: &str = {:?};", self.model_hash);
        if let Some((crc, bytes)) = esm_hash_parts(&self.model_hash) {
            let _ = writeln!(
                s,
                "/// CRC-32 of the model blob's body: `Model::hash_parts().0` must equal it."
            );
            let _ = writeln!(s, "pub const MODEL_BODY_CRC: u32 = {crc:#010x};");
            let _ = writeln!(
                s,
                "/// Bytes of the model blob: `Model::hash_parts().1` must equal it."
            );
            let _ = writeln!(s, "pub const MODEL_BYTES: usize = {bytes};");
        }
        let _ = writeln!(s, "/// Number of segments (encoder first, then decoders).");
        let _ = writeln!(s, "pub const SEGMENTS: usize = {};", self.segments.len());
        let _ = writeln!(
            s,
            "/// Budget levels by increasing budget: (budget in microseconds, width index per \
             segment, task mask)."
        );
        let _ = writeln!(
            s,
            "pub const LEVELS: [(u32, [u8; SEGMENTS], u32); {}] = [",
            self.levels.len()
        );
        for l in &self.levels {
            let widths: Vec<String> = l.widths.iter().map(u8::to_string).collect();
            let _ = writeln!(
                s,
                "    ({}, [{}], {:#x}),",
                l.budget_us,
                widths.join(", "),
                l.task_mask
            );
        }
        let _ = writeln!(s, "];");
        if let Some(n) = &self.npu {
            crate::npu::rust_items(&mut s, n);
        }
        s
    }
}

/// `(body_crc, bytes)` of a model hash `esm-crc32:<8 lowercase hex digits>:<decimal bytes>`, the
/// form `edgeslim` writes; `None` for any other string. The same rule as the runtime's
/// `Model::parse_hash` (this crate does not depend on the runtime).
pub fn esm_hash_parts(hash: &str) -> Option<(u32, usize)> {
    let (crc, bytes) = hash.strip_prefix("esm-crc32:")?.split_once(':')?;
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if crc.len() != 8 || !crc.bytes().all(hex) {
        return None;
    }
    if bytes.is_empty()
        || !bytes.bytes().all(|b| b.is_ascii_digit())
        || (bytes.len() > 1 && bytes.starts_with('0'))
    {
        return None;
    }
    Some((u32::from_str_radix(crc, 16).ok()?, bytes.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SegmentWidths;

    fn bundle(hash: &str) -> Bundle {
        Bundle {
            format: BUNDLE_FORMAT.to_string(),
            model_hash: hash.to_string(),
            target: "cortex-m4-qemu-icount".to_string(),
            mode: BundleMode::Paper,
            preferences: vec![PreferenceWeight {
                task: "digit".to_string(),
                weight: 1.0,
            }],
            segments: vec![
                SegmentWidths {
                    name: "encoder".to_string(),
                    widths: vec![0.5, 1.0],
                },
                SegmentWidths {
                    name: "digit".to_string(),
                    widths: vec![1.0],
                },
            ],
            tasks: vec!["digit".to_string()],
            levels: vec![BundleLevel {
                budget_us: 100,
                widths: vec![1, 0],
                multipliers: vec![1.0, 1.0],
                task_mask: 1,
                predicted_latency_us: 90.0,
                score: 0.9,
            }],
            npu: None,
        }
    }

    #[test]
    fn esm_hash_gives_numeric_constants() {
        let b = bundle("esm-crc32:0badf00d:5120");
        b.validate().unwrap();
        let src = b.to_rust_source();
        assert!(src.contains("pub const MODEL_HASH: &str = \"esm-crc32:0badf00d:5120\";\n"));
        assert!(src.contains("pub const MODEL_BODY_CRC: u32 = 0x0badf00d;\n"));
        assert!(src.contains("pub const MODEL_BYTES: usize = 5120;\n"));
        assert!(src.contains("    (100, [1, 0], 0x1),\n"));
    }

    #[test]
    fn other_hashes_give_only_the_string() {
        for h in [
            "h-two",
            "esm-crc32:0BADF00D:5120",
            "esm-crc32:0badf00d:",
            "esm-crc32:0badf00:1",
        ] {
            let src = bundle(h).to_rust_source();
            assert!(src.contains("pub const MODEL_HASH"), "{h}");
            assert!(!src.contains("MODEL_BODY_CRC"), "{h}");
            assert!(!src.contains("MODEL_BYTES"), "{h}");
        }
    }

    #[test]
    fn esm_hash_parts_rules() {
        assert_eq!(esm_hash_parts("esm-crc32:ffffffff:1"), Some((u32::MAX, 1)));
        assert_eq!(esm_hash_parts("esm-crc32:00000000:0"), Some((0, 0)));
        for bad in [
            "",
            "esm-crc32:ffffffff:01",
            "esm-crc32:fffffffff:1",
            "esm-crc32:ffffffff:1x",
        ] {
            assert_eq!(esm_hash_parts(bad), None, "{bad:?}");
        }
    }
}
