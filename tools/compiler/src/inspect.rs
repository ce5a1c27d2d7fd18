//! What a compiled blob holds: ops per segment, widths, MACs and live bytes per width
//! configuration, flash bytes, arena bytes next to the liveness lower bound.

use crate::width::{all_configs, describe};
use anyhow::{Result, anyhow};
use edgeslim_runtime::format::attr;
use edgeslim_runtime::{Model, OpKind, TaskMask, WidthConfig};
use serde::Serialize;
use std::fmt::Write;

/// One op.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// Index in execution order.
    pub index: usize,
    /// Kind.
    pub kind: String,
    /// Output tensor name.
    pub output: String,
    /// Output shape `[h, w, c]` at full width.
    pub shape: [usize; 3],
    /// Weight bytes.
    pub weight_bytes: usize,
}

/// One segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    /// Name.
    pub name: String,
    /// Width multipliers.
    pub widths: Vec<f32>,
    /// Its ops.
    pub ops: Vec<OpReport>,
    /// MACs of the segment's ops at each of its widths (the encoder at full width for
    /// decoders).
    pub macs_per_width: Vec<u64>,
}

/// One width configuration, every task running.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    /// `segment=multiplier,...`.
    pub widths: String,
    /// Width indices, encoder first.
    pub indices: Vec<u8>,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Largest sum of live activation bytes at one step (what the config needs at least).
    pub peak_live_bytes: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// Model name.
    pub name: String,
    /// CRC-32 of the body.
    pub body_crc: String,
    /// Input `[h, w, c]` (NHWC) and quantization.
    pub input: [usize; 3],
    /// Tasks: `(name, segment, outputs)`.
    pub tasks: Vec<(String, String, Vec<String>)>,
    /// Segments.
    pub segments: Vec<SegmentReport>,
    /// int8 weight bytes.
    pub weight_bytes: usize,
    /// Parameter-table bytes.
    pub param_bytes: usize,
    /// Whole blob bytes (flash).
    pub blob_bytes: usize,
    /// Planned arena bytes.
    pub arena_bytes: usize,
    /// Liveness lower bound of the arena (widest config, every task).
    pub arena_lower_bound: usize,
    /// Every width configuration.
    pub configs: Vec<ConfigReport>,
}

/// MACs of op `i` at `cfg`.
fn op_macs(m: &Model<'_>, i: usize, cfg: &WidthConfig) -> u64 {
    let Some(op) = m.op(i) else { return 0 };
    let e = m.entry(&op, m.key(&op, cfg));
    let (cin, cout) = (e.in_ch() as u64, e.out_ch() as u64);
    let out = m
        .tensor(op.output)
        .map_or((0, 0), |t| (t.h as u64, t.w as u64));
    match op.kind {
        OpKind::Conv2d => {
            let groups = if op.attrs[attr::DEPTHWISE] == 1 {
                cin
            } else {
                op.attrs[attr::GROUPS] as u64
            }
            .max(1);
            out.0 * out.1 * cout * (op.wshape[1] * op.wshape[2]) as u64 * (cin / groups)
        }
        OpKind::FullyConnected => op.wshape[1] as u64 * cin * cout,
        // Every input position meets every tap once (the output crops what padding removes).
        OpKind::ConvTranspose => {
            let inp = m
                .tensor(m.op_input(&op, 0))
                .map_or(0, |t| (t.h * t.w) as u64);
            let groups = (op.attrs[attr::GROUPS] as u64).max(1);
            inp * cout * (op.wshape[1] * op.wshape[2]) as u64 * (cin / groups)
        }
        _ => 0,
    }
}

/// Peak live bytes at `cfg` with `tasks` (tensor live intervals from the blob).
pub fn peak_live(m: &Model<'_>, cfg: &WidthConfig, tasks: TaskMask) -> usize {
    let mut segs = 1u32;
    for t in 0..m.num_tasks() {
        if tasks.contains(t) {
            segs |= 1 << m.task(t).map_or(0, |t| t.segment);
        }
    }
    let mut peak = 0;
    for step in 0..m.num_ops() {
        let mut live = 0;
        for t in 0..m.num_tensors() {
            let Some(info) = m.tensor(t) else { continue };
            if info.alias.is_some() || segs & (1 << info.segment) == 0 {
                continue;
            }
            if info.first <= step && step <= info.last {
                let (c, _, _) = m.tensor_quant(t, cfg);
                live += info.h * info.w * c;
            }
        }
        peak = peak.max(live);
    }
    peak
}

/// Inspect a blob.
pub fn inspect(blob: &[u8]) -> Result<Inspection> {
    let m = Model::parse(blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
    let full = WidthConfig::full(&m);
    let mut segments = Vec::new();
    for s in 0..m.num_segments() {
        let seg = m.segment(s).ok_or_else(|| anyhow!("segment {s}"))?;
        let mut ops = Vec::new();
        for i in 0..m.num_ops() {
            let Some(op) = m.op(i) else { continue };
            if op.segment != s {
                continue;
            }
            let t = m.tensor(op.output).ok_or_else(|| anyhow!("tensor"))?;
            ops.push(OpReport {
                index: i,
                kind: op.kind.name().into(),
                output: t.name.into(),
                shape: [t.h, t.w, t.c],
                weight_bytes: op.weights_len,
            });
        }
        let macs_per_width = (0..seg.n_widths)
            .map(|w| {
                let mut cfg = full;
                let _ = cfg.set(s, w as u8);
                ops.iter().map(|o| op_macs(&m, o.index, &cfg)).sum()
            })
            .collect();
        segments.push(SegmentReport {
            name: seg.name.into(),
            widths: seg.multipliers().to_vec(),
            ops,
            macs_per_width,
        });
    }
    let all = TaskMask::all(&m);
    let configs = all_configs(&m)
        .iter()
        .map(|c| ConfigReport {
            widths: describe(&m, c),
            indices: c.as_slice().to_vec(),
            macs: (0..m.num_ops()).map(|i| op_macs(&m, i, c)).sum(),
            peak_live_bytes: peak_live(&m, c, all),
        })
        .collect();
    let tasks = (0..m.num_tasks())
        .filter_map(|t| m.task(t))
        .map(|t| {
            (
                t.name.to_string(),
                m.segment(t.segment)
                    .map_or(String::new(), |s| s.name.to_string()),
                (t.first_output..t.first_output + t.n_outputs)
                    .filter_map(|o| m.output(o).map(|o| o.name.to_string()))
                    .collect(),
            )
        })
        .collect();
    let i = m.input();
    Ok(Inspection {
        name: m.name().into(),
        body_crc: format!("{:08x}", m.body_crc()),
        input: [i.h, i.w, i.c],
        tasks,
        segments,
        weight_bytes: m.weight_bytes(),
        param_bytes: m.param_bytes(),
        blob_bytes: blob.len(),
        arena_bytes: m.arena_bytes(),
        arena_lower_bound: peak_live(&m, &full, all),
        configs,
    })
}

impl Inspection {
    /// Human-readable text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model {} (crc {})", self.name, self.body_crc);
        let _ = writeln!(
            s,
            "input [h, w, c] = {:?}; tasks: {}",
            self.input,
            self.tasks
                .iter()
                .map(|(n, seg, o)| format!("{n} (segment {seg}, outputs {})", o.join("+")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "flash: {} B weights + {} B params, blob {} B",
            self.weight_bytes, self.param_bytes, self.blob_bytes
        );
        let _ = writeln!(
            s,
            "arena: {} B (liveness lower bound {} B, {:.3}x)",
            self.arena_bytes,
            self.arena_lower_bound,
            self.arena_bytes as f64 / self.arena_lower_bound.max(1) as f64
        );
        for seg in &self.segments {
            let _ = writeln!(
                s,
                "\nsegment {} widths {:?}: {} ops",
                seg.name,
                seg.widths,
                seg.ops.len()
            );
            for (w, macs) in seg.widths.iter().zip(&seg.macs_per_width) {
                let _ = writeln!(s, "  MACs at {w}: {macs}");
            }
            for o in &seg.ops {
                let _ = writeln!(
                    s,
                    "  #{:<3} {:<15} -> {:?} {}{}",
                    o.index,
                    o.kind,
                    o.shape,
                    o.output,
                    if o.weight_bytes > 0 {
                        format!("  ({} B weights)", o.weight_bytes)
                    } else {
                        String::new()
                    }
                );
            }
        }
        let _ = writeln!(
            s,
            "\n{} width configs (every task running):",
            self.configs.len()
        );
        let show: Vec<&ConfigReport> = if self.configs.len() <= 32 {
            self.configs.iter().collect()
        } else {
            let mut v: Vec<&ConfigReport> = self.configs.iter().take(8).collect();
            v.extend(self.configs.iter().rev().take(8).rev());
            v
        };
        for (k, c) in show.iter().enumerate() {
            if self.configs.len() > 32 && k == 8 {
                let _ = writeln!(
                    s,
                    "  ... ({} more; --json lists all)",
                    self.configs.len() - 16
                );
            }
            let _ = writeln!(
                s,
                "  {:<48} MACs {:>10}  live {:>8} B",
                c.widths, c.macs, c.peak_live_bytes
            );
        }
        s
    }
}
