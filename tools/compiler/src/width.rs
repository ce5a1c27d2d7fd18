//! Width-configuration and task-set specs as users type them: `encoder=0.5,digit=1.0` and
//! `digit,bold`.

use anyhow::{Result, anyhow, bail};
use edgeslim_runtime::{Model, TaskMask, WidthConfig};

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// Parse `segment=multiplier,...` into a [`WidthConfig`] of `model`; segments not named run
/// at full width. An empty spec is the full-width config.
pub fn parse_widths(model: &Model<'_>, spec: &str) -> Result<WidthConfig> {
    let mut cfg = WidthConfig::full(model);
    let mut seen = vec![false; model.num_segments()];
    let segs = || {
        (0..model.num_segments())
            .filter_map(|s| model.segment(s))
            .map(|s| s.name)
    };
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').ok_or_else(|| {
            anyhow!(
                "malformed width spec item {item:?}: expected segment=multiplier (e.g. encoder=0.5)"
            )
        })?;
        let (name, value) = (name.trim(), value.trim());
        let s = model.segment_index(name).ok_or_else(|| {
            anyhow!(
                "unknown segment {name:?} in width spec (segments: {})",
                names(segs())
            )
        })?;
        if seen[s] {
            bail!("segment {name} appears twice in the width spec");
        }
        seen[s] = true;
        let m: f32 = value.parse().map_err(|_| {
            anyhow!("malformed multiplier {value:?} for segment {name}: expected a number like 0.5")
        })?;
        let seg = model.segment(s).ok_or_else(|| anyhow!("no segment {s}"))?;
        let idx = seg
            .multipliers()
            .iter()
            .position(|&w| (w - m).abs() < 1e-4)
            .ok_or_else(|| {
                let ws: Vec<String> = seg.multipliers().iter().map(|w| format!("{w}")).collect();
                anyhow!(
                    "segment {name} has no width {m} (widths: {})",
                    ws.join(", ")
                )
            })?;
        cfg.set(s, idx as u8).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(cfg)
}

/// Parse `task,task,...` into a [`TaskMask`]; an empty spec selects every task.
pub fn parse_tasks(model: &Model<'_>, spec: &str) -> Result<TaskMask> {
    let mut mask = TaskMask(0);
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let t = model.task_index(name).ok_or_else(|| {
            anyhow!(
                "unknown task {name:?} (tasks: {})",
                names(
                    (0..model.num_tasks())
                        .filter_map(|t| model.task(t))
                        .map(|t| t.name)
                )
            )
        })?;
        mask = mask.with(t);
    }
    Ok(if mask.0 == 0 {
        TaskMask::all(model)
    } else {
        mask
    })
}

/// The multipliers of `cfg`, `segment=multiplier` joined by commas.
pub fn describe(model: &Model<'_>, cfg: &WidthConfig) -> String {
    (0..model.num_segments())
        .filter_map(|s| {
            let seg = model.segment(s)?;
            let i = cfg.get(s)? as usize;
            Some(format!("{}={}", seg.name, seg.multipliers().get(i)?))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Every width configuration of `model` (product of the segments' widths), encoder slowest.
pub fn all_configs(model: &Model<'_>) -> Vec<WidthConfig> {
    let n = model.num_segments();
    let counts: Vec<usize> = (0..n)
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .collect();
    let total: usize = counts.iter().product();
    let mut out = Vec::with_capacity(total);
    for mut k in 0..total {
        let mut idx = vec![0u8; n];
        for s in (0..n).rev() {
            idx[s] = (k % counts[s]) as u8;
            k /= counts[s];
        }
        if let Ok(c) = WidthConfig::from_indices(&idx) {
            out.push(c);
        }
    }
    out
}
