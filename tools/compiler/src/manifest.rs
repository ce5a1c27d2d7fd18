//! The slimming manifest (`docs/manifest.md`, format 1): parsing and self-consistency checks.
//! Checks against the graph live in the lowering pass, which knows the layers.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The format string of format 1.
pub const FORMAT: &str = "edgeslim.manifest/1";

/// How channels are cut at a multiplier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRule {
    /// `"ceil"`.
    pub kind: String,
    /// Channel counts are multiples of this (default 1).
    #[serde(default = "one")]
    pub divisor: u32,
    /// Smallest count (default 1).
    #[serde(default = "one")]
    pub min: u32,
}

fn one() -> u32 {
    1
}

impl ChannelRule {
    /// Active channels of a layer with `c` channels at multiplier `m`.
    pub fn active(&self, m: f32, c: usize) -> usize {
        let d = self.divisor.max(1) as f64;
        let v = d * (m as f64 * c as f64 / d - 1e-6).ceil();
        (v.max(self.min as f64) as usize).min(c)
    }
}

impl Default for ChannelRule {
    fn default() -> Self {
        ChannelRule {
            kind: "ceil".into(),
            divisor: 1,
            min: 1,
        }
    }
}

/// A segment: an encoder stage (the leading segments with role `encoder`; by default the
/// first segment alone) or a decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Name.
    pub name: String,
    /// `encoder` (a stage of the shared encoder) or `decoder`; default: the first segment is
    /// the encoder, every other one a decoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Node-name prefix of its members.
    #[serde(default)]
    pub node_prefix: Option<String>,
    /// Explicit members.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Width multipliers, increasing, the last 1.0.
    pub widths: Vec<f32>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Name.
    pub name: String,
    /// Graph outputs it owns.
    pub outputs: Vec<String>,
    /// The segment computing it.
    pub segment: String,
    /// Metric: `accuracy` (classification), `miou` (semantic segmentation) or `rmse`
    /// (dense regression such as depth; lower is better).
    #[serde(default = "accuracy")]
    pub metric: String,
}

/// The task metrics the manifest may name.
pub const METRICS: [&str; 3] = ["accuracy", "miou", "rmse"];

fn accuracy() -> String {
    "accuracy".into()
}

/// Per-width switchable-BN parameters at one width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WidthParams {
    /// Per-channel weight multiplier.
    pub channel_scale: Vec<f32>,
    /// Per-channel bias.
    pub bias: Vec<f32>,
}

/// Per-width parameters of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerWidth {
    /// ONNX node name of the Conv/Gemm/MatMul.
    pub node: String,
    /// One entry per width of the layer's segment.
    pub widths: Vec<Option<WidthParams>>,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `edgeslim.manifest/1`.
    pub format: String,
    /// Channel rule.
    pub channel_rule: ChannelRule,
    /// Segments, encoder first.
    pub segments: Vec<Segment>,
    /// Tasks.
    pub tasks: Vec<Task>,
    /// Layers never slimmed.
    #[serde(default)]
    pub fixed_channels: Vec<String>,
    /// Per-width layer parameters.
    #[serde(default)]
    pub per_width: Vec<PerWidth>,
}

impl Manifest {
    /// Parse and check the manifest's own rules (names, widths, ownership).
    pub fn parse(json: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("invalid edgeslim.manifest: {e}"))?;
        m.check()?;
        Ok(m)
    }

    /// The default manifest of a model without one: segment `main` at 1.0, a task per output.
    pub fn single(outputs: &[String]) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            channel_rule: ChannelRule::default(),
            segments: vec![Segment {
                name: "main".into(),
                role: None,
                node_prefix: None,
                nodes: vec![],
                widths: vec![1.0],
            }],
            tasks: outputs
                .iter()
                .map(|o| Task {
                    name: o.clone(),
                    outputs: vec![o.clone()],
                    segment: "main".into(),
                    metric: accuracy(),
                })
                .collect(),
            fixed_channels: vec![],
            per_width: vec![],
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |field: String, why: &str| -> Result<()> {
            bail!("invalid edgeslim.manifest: {field}: {why}")
        };
        if self.format != FORMAT {
            bad(
                "format".into(),
                &format!("must be \"{FORMAT}\", got {:?}", self.format),
            )?;
        }
        if self.channel_rule.kind != "ceil" {
            bad("channel_rule.kind".into(), "only \"ceil\" is defined")?;
        }
        if self.channel_rule.divisor < 1 {
            bad("channel_rule.divisor".into(), "must be >= 1")?;
        }
        if self.channel_rule.min < 1 {
            bad("channel_rule.min".into(), "must be >= 1")?;
        }
        if self.segments.is_empty() {
            bad("segments".into(), "at least one segment (the encoder)")?;
        }
        if self.segments.len() > edgeslim_runtime::format::MAX_SEGMENTS {
            bad("segments".into(), "at most 16 segments")?;
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                bad(format!("segments[{i}].name"), "must match [A-Za-z0-9_-]+")?;
            }
            if self.segments[..i].iter().any(|o| o.name == s.name) {
                bad(
                    format!("segments[{i}].name"),
                    &format!("duplicate name {}", s.name),
                )?;
            }
            if s.widths.is_empty() || s.widths.len() > 8 {
                bad(format!("segments[{i}].widths"), "1 to 8 multipliers")?;
            }
            let mut prev = 0.0;
            for &w in &s.widths {
                if !(w > prev && w <= 1.0) {
                    bad(
                        format!("segments[{i}].widths"),
                        "must increase strictly within (0, 1]",
                    )?;
                }
                prev = w;
            }
            match (i, s.role.as_deref()) {
                (_, None | Some("decoder")) | (_, Some("encoder")) => {}
                _ => bad(
                    format!("segments[{i}].role"),
                    "must be \"encoder\" or \"decoder\"",
                )?,
            }
            if i == 0 && s.role.as_deref() == Some("decoder") {
                bad(
                    format!("segments[{i}].role"),
                    "the first segment is an encoder stage",
                )?;
            }
            if i > 0
                && s.role.as_deref() == Some("encoder")
                && !self.segments[..i]
                    .iter()
                    .enumerate()
                    .all(|(k, o)| self.is_encoder_role(k, o))
            {
                bad(
                    format!("segments[{i}].role"),
                    "encoder stages must come first, before every decoder",
                )?;
            }
            if s.widths.last() != Some(&1.0) {
                bad(
                    format!("segments[{i}].widths"),
                    "the last multiplier must be 1.0",
                )?;
            }
        }
        if self.tasks.is_empty() {
            bad("tasks".into(), "at least one task")?;
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if self.tasks[..i].iter().any(|o| o.name == t.name) {
                bad(
                    format!("tasks[{i}].name"),
                    &format!("duplicate name {}", t.name),
                )?;
            }
            if t.outputs.is_empty() {
                bad(format!("tasks[{i}].outputs"), "at least one output")?;
            }
            for o in &t.outputs {
                if self.tasks[..i].iter().any(|p| p.outputs.contains(o)) {
                    bad(
                        format!("tasks[{i}].outputs"),
                        &format!("{o} is owned by another task"),
                    )?;
                }
            }
            if self.segment_index(&t.segment).is_none() {
                bad(
                    format!("tasks[{i}].segment"),
                    &format!("no segment named {}", t.segment),
                )?;
            }
            if !METRICS.contains(&t.metric.as_str()) {
                bad(
                    format!("tasks[{i}].metric"),
                    "must be \"accuracy\", \"miou\" or \"rmse\"",
                )?;
            }
        }
        for (i, p) in self.per_width.iter().enumerate() {
            let _ = (i, p);
        }
        Ok(())
    }

    fn is_encoder_role(&self, i: usize, s: &Segment) -> bool {
        match s.role.as_deref() {
            Some(r) => r == "encoder",
            None => i == 0,
        }
    }

    /// Number of encoder stages: the leading segments of role `encoder` (the first segment
    /// alone when no role is given).
    pub fn n_encoder(&self) -> usize {
        self.segments
            .iter()
            .enumerate()
            .take_while(|(i, s)| self.is_encoder_role(*i, s))
            .count()
            .max(1)
    }

    /// Index of segment `name`.
    pub fn segment_index(&self, name: &str) -> Option<usize> {
        self.segments.iter().position(|s| s.name == name)
    }

    /// The segment a node belongs to: explicit lists win, then the longest prefix, else the
    /// encoder.
    pub fn segment_of(&self, node: &str) -> usize {
        if let Some(i) = self
            .segments
            .iter()
            .position(|s| s.nodes.iter().any(|n| n == node))
        {
            return i;
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, s) in self.segments.iter().enumerate() {
            if let Some(p) = &s.node_prefix
                && node.starts_with(p.as_str())
                && best.is_none_or(|(_, l)| p.len() > l)
            {
                best = Some((i, p.len()));
            }
        }
        best.map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_rule_is_the_documented_one() {
        let r = ChannelRule::default();
        assert_eq!(r.active(0.25, 16), 4);
        assert_eq!(r.active(0.25, 10), 3);
        assert_eq!(r.active(0.1, 4), 1);
        assert_eq!(r.active(1.0, 7), 7);
        let r8 = ChannelRule {
            kind: "ceil".into(),
            divisor: 8,
            min: 8,
        };
        assert_eq!(r8.active(0.3, 40), 16);
        assert_eq!(r8.active(0.1, 40), 8);
    }

    #[test]
    fn membership_prefers_explicit_nodes_then_the_longest_prefix() {
        let m = Manifest::parse(
            r#"{"format": "edgeslim.manifest/1", "channel_rule": {"kind": "ceil"},
                "segments": [{"name": "encoder", "node_prefix": "/e/", "widths": [0.5, 1.0]},
                             {"name": "d", "node_prefix": "/e/d/", "nodes": ["/x"], "widths": [1.0]}],
                "tasks": [{"name": "t", "outputs": ["y"], "segment": "d"}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.segment_of("/e/conv"), 0);
        assert_eq!(m.segment_of("/e/d/conv"), 1);
        assert_eq!(m.segment_of("/x"), 1);
        assert_eq!(m.segment_of("/other"), 0);
    }

    #[test]
    fn bad_manifests_name_the_field() {
        let e = |j: &str| {
            format!(
                "{:#}",
                Manifest::parse(j)
                    .err()
                    .unwrap_or_else(|| panic!("{j} parsed"))
            )
        };
        assert!(e(r#"{"format": "x"}"#).contains("channel_rule"));
        let base = |seg: &str| {
            format!(
                r#"{{"format": "edgeslim.manifest/1", "channel_rule": {{"kind": "ceil"}},
                    "segments": [{seg}], "tasks": [{{"name": "t", "outputs": ["y"], "segment": "e"}}]}}"#
            )
        };
        assert!(e(&base(r#"{"name": "e", "widths": [0.5]}"#)).contains("segments[0].widths"));
        assert!(e(&base(r#"{"name": "e f", "widths": [1.0]}"#)).contains("segments[0].name"));
        assert!(e(&base(r#"{"name": "x", "widths": [1.0]}"#)).contains("tasks[0].segment"));
    }
}
