//! Host-side model building and serialization to the blob format (`std` feature).
//!
//! [`ModelDef`] is the owned description of a model; [`plan::plan`] assigns arena offsets;
//! [`ModelDef::to_bytes`] writes the blob. The result is checked by [`crate::Model::parse`]
//! like any other blob, so the writer cannot produce something the runtime would misread.

pub mod example;
pub mod plan;

use crate::format::{
    self, HEADER_LEN, MAX_OP_INPUTS, NONE, OpKind, SECTION_ALIGN, TABLE_ENTRY_LEN, WEIGHT_ALIGN,
    kind, op_field, size, word,
};
pub use plan::{MemoryPlan, plan};

/// A segment: an encoder stage (the first [`ModelDef::encoder_segments`]) or a decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDef {
    /// Name.
    pub name: String,
    /// Increasing width multipliers, the last 1.0.
    pub widths: Vec<f32>,
    /// The earlier encoder stage whose width its ops' parameters may depend on (every op's
    /// `in_segment` is this or `None`).
    pub in_segment: Option<usize>,
}

/// A model output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDef {
    /// Name (the graph output's).
    pub name: String,
    /// Tensor index.
    pub tensor: usize,
}

/// A task: a decoder segment and its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDef {
    /// Name.
    pub name: String,
    /// Segment computing it.
    pub segment: usize,
    /// Its outputs.
    pub outputs: Vec<OutputDef>,
}

/// An activation tensor, NHWC batch 1, at full width.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDef {
    /// Name.
    pub name: String,
    /// `[h, w, c]`.
    pub shape: [usize; 3],
    /// Segment of the producer.
    pub segment: usize,
}

impl TensorDef {
    /// Bytes at full width.
    pub fn bytes(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Per-output-channel requantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelDef {
    /// int32 bias (in accumulator units).
    pub bias: i32,
    /// Q31 multiplier.
    pub multiplier: i32,
    /// Shift.
    pub shift: i32,
}

/// One width entry of an op.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryDef {
    /// Active input channels.
    pub in_ch: usize,
    /// Active output channels.
    pub out_ch: usize,
    /// Input zero point.
    pub in_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Output scale.
    pub out_scale: f32,
    /// Fused activation clamp.
    pub act: (i8, i8),
    /// Op-specific words (see `ops::<op>::word`).
    pub extra: Vec<i32>,
    /// Per-channel triples (conv and fully connected), `out_ch` of them.
    pub channels: Vec<ChannelDef>,
}

/// An op.
#[derive(Debug, Clone, PartialEq)]
pub struct OpDef {
    /// Kind.
    pub kind: OpKind,
    /// Segment.
    pub segment: usize,
    /// Its segment's `in_segment` when the op's parameters depend on that stage's width.
    pub in_segment: Option<usize>,
    /// Input tensors.
    pub inputs: Vec<usize>,
    /// Output tensor.
    pub output: usize,
    /// int8 weights (empty for ops without).
    pub weights: Vec<i8>,
    /// Weight shape.
    pub wshape: [usize; 4],
    /// Attributes (see `format::attr`).
    pub attrs: [u32; op_field::N_ATTRS],
    /// Width entries, key `w_in * n_widths(segment) + w`.
    pub entries: Vec<EntryDef>,
}

/// An owned model description.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDef {
    /// Model name.
    pub name: String,
    /// Segments, encoder stages first.
    pub segments: Vec<SegmentDef>,
    /// How many of the first segments are encoder stages (>= 1).
    pub encoder_segments: usize,
    /// Tasks.
    pub tasks: Vec<TaskDef>,
    /// Tensors.
    pub tensors: Vec<TensorDef>,
    /// Ops in execution order.
    pub ops: Vec<OpDef>,
    /// Input tensor.
    pub input: usize,
    /// Input scale.
    pub input_scale: f32,
    /// Input zero point.
    pub input_zero_point: i32,
}

/// Something the format cannot represent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError(pub String);

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write model blob: {}", self.0)
    }
}

impl std::error::Error for WriteError {}

fn u32w(v: usize, what: &str) -> Result<u32, WriteError> {
    u32::try_from(v).map_err(|_| WriteError(format!("{what} ({v}) exceeds u32")))
}

#[derive(Default)]
struct Strings {
    bytes: Vec<u8>,
}

impl Strings {
    fn add(&mut self, s: &str) -> Result<[u32; 2], WriteError> {
        let off = u32w(self.bytes.len(), "strings")?;
        self.bytes.extend_from_slice(s.as_bytes());
        Ok([off, u32w(s.len(), "name")?])
    }
}

fn put(buf: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        buf.extend_from_slice(&w.to_le_bytes());
    }
}

fn pad_to(buf: &mut Vec<u8>, align: usize) {
    while !buf.len().is_multiple_of(align) {
        buf.push(0);
    }
}

impl ModelDef {
    /// Serialize with the arena `plan` (from [`plan()`]).
    pub fn to_bytes(&self, plan: &MemoryPlan) -> Result<Vec<u8>, WriteError> {
        if plan.offsets.len() != self.tensors.len() {
            return Err(WriteError("memory plan does not match the tensors".into()));
        }
        let mut strings = Strings::default();
        let mut graph = Vec::new();
        let name = strings.add(&self.name)?;
        put(
            &mut graph,
            &[
                u32w(self.input, "input")?,
                self.input_scale.to_bits(),
                self.input_zero_point as u32,
                u32w(plan.arena_bytes, "arena bytes")?,
                name[0],
                name[1],
                u32w(self.encoder_segments, "encoder segments")?,
                0,
            ],
        );
        let mut segments = Vec::new();
        for s in &self.segments {
            if s.widths.is_empty() || s.widths.len() > format::MAX_WIDTHS {
                return Err(WriteError(format!("segment {}: 1 to 8 widths", s.name)));
            }
            let n = strings.add(&s.name)?;
            put(&mut segments, &[n[0], n[1], s.widths.len() as u32]);
            for k in 0..format::MAX_WIDTHS {
                put(
                    &mut segments,
                    &[s.widths.get(k).copied().unwrap_or(0.0).to_bits()],
                );
            }
            put(
                &mut segments,
                &[match s.in_segment {
                    Some(i) => u32w(i, "in_segment")?,
                    None => NONE,
                }],
            );
        }
        let mut tasks = Vec::new();
        let mut outputs = Vec::new();
        let mut n_outputs = 0usize;
        for (ti, t) in self.tasks.iter().enumerate() {
            let n = strings.add(&t.name)?;
            put(
                &mut tasks,
                &[
                    n[0],
                    n[1],
                    u32w(t.segment, "segment")?,
                    n_outputs as u32,
                    t.outputs.len() as u32,
                    0,
                ],
            );
            for o in &t.outputs {
                let n = strings.add(&o.name)?;
                put(
                    &mut outputs,
                    &[n[0], n[1], u32w(o.tensor, "tensor")?, ti as u32],
                );
                n_outputs += 1;
            }
        }
        let alias = plan::aliases(self);
        let mut producer = vec![NONE; self.tensors.len()];
        for (i, op) in self.ops.iter().enumerate() {
            if let Some(p) = producer.get_mut(op.output) {
                *p = u32w(i, "producer")?;
            }
        }
        let mut tensors = Vec::new();
        for (i, t) in self.tensors.iter().enumerate() {
            let n = strings.add(&t.name)?;
            put(
                &mut tensors,
                &[
                    n[0],
                    n[1],
                    u32w(t.shape[0], "h")?,
                    u32w(t.shape[1], "w")?,
                    u32w(t.shape[2], "c")?,
                    u32w(t.segment, "segment")?,
                    if alias[i] == i { NONE } else { alias[i] as u32 },
                    u32w(plan.offsets[i], "offset")?,
                    u32w(plan.first[i], "first")?,
                    u32w(plan.last[i], "last")?,
                    producer[i],
                    0,
                ],
            );
        }
        let mut ops = Vec::new();
        let mut op_inputs = Vec::new();
        let mut weights: Vec<u8> = Vec::new();
        let mut params: Vec<u32> = Vec::new();
        for (oi, op) in self.ops.iter().enumerate() {
            if op.inputs.is_empty() || op.inputs.len() > MAX_OP_INPUTS {
                return Err(WriteError(format!("op {oi}: 1 to 8 inputs")));
            }
            let first_input = op_inputs.len() / 4;
            for &t in &op.inputs {
                put(&mut op_inputs, &[u32w(t, "input")?]);
            }
            pad_to(&mut weights, WEIGHT_ALIGN);
            let w_off = weights.len();
            weights.extend(op.weights.iter().map(|&w| w as u8));
            let param_words = word::COUNT + op.kind.extra_words(op.inputs.len());
            let params_off = params.len();
            let mut chan_at = params_off + op.entries.len() * param_words;
            for (k, e) in op.entries.iter().enumerate() {
                if e.extra.len() != param_words - word::COUNT {
                    return Err(WriteError(format!(
                        "op {oi} entry {k}: {} extra words, {} expected",
                        e.extra.len(),
                        param_words - word::COUNT
                    )));
                }
                let chan = if e.channels.is_empty() {
                    NONE
                } else {
                    let c = chan_at;
                    chan_at += 3 * e.channels.len();
                    u32w(c, "params")?
                };
                params.extend_from_slice(&[
                    u32w(e.in_ch, "in_ch")?,
                    u32w(e.out_ch, "out_ch")?,
                    e.in_zp as u32,
                    e.out_zp as u32,
                    e.out_scale.to_bits(),
                    e.act.0 as i32 as u32,
                    e.act.1 as i32 as u32,
                    chan,
                ]);
                params.extend(e.extra.iter().map(|&v| v as u32));
            }
            for e in &op.entries {
                for c in &e.channels {
                    params.extend_from_slice(&[c.bias as u32, c.multiplier as u32, c.shift as u32]);
                }
            }
            let mut rec = Vec::with_capacity(size::OP);
            put(
                &mut rec,
                &[
                    op.kind as u32,
                    u32w(op.segment, "segment")?,
                    op.in_segment.map_or(NONE, |s| s as u32),
                    u32w(first_input, "inputs")?,
                    op.inputs.len() as u32,
                    u32w(op.output, "output")?,
                    u32w(w_off, "weights")?,
                    u32w(op.weights.len(), "weights")?,
                ],
            );
            for d in op.wshape {
                put(&mut rec, &[u32w(d, "wshape")?]);
            }
            put(
                &mut rec,
                &[
                    u32w(params_off, "params")?,
                    param_words as u32,
                    op.entries.len() as u32,
                ],
            );
            put(&mut rec, &op.attrs);
            rec.resize(size::OP, 0);
            ops.extend_from_slice(&rec);
        }
        let mut param_bytes = Vec::with_capacity(params.len() * 4);
        put(&mut param_bytes, &params);

        let n_rec = |b: &Vec<u8>, r: usize| b.len() / r;
        let sections: [(u32, &[u8], usize); kind::COUNT] = [
            (kind::GRAPH, &graph, 1),
            (kind::STRINGS, &strings.bytes, strings.bytes.len()),
            (kind::SEGMENTS, &segments, n_rec(&segments, size::SEGMENT)),
            (kind::TASKS, &tasks, n_rec(&tasks, size::TASK)),
            (kind::OUTPUTS, &outputs, n_rec(&outputs, size::OUTPUT)),
            (kind::TENSORS, &tensors, n_rec(&tensors, size::TENSOR)),
            (kind::OPS, &ops, n_rec(&ops, size::OP)),
            (kind::OP_INPUTS, &op_inputs, op_inputs.len() / 4),
            (kind::WEIGHTS, &weights, weights.len()),
            (kind::PARAMS, &param_bytes, params.len()),
        ];
        let mut blob = vec![0u8; HEADER_LEN + kind::COUNT * TABLE_ENTRY_LEN];
        pad_to(&mut blob, SECTION_ALIGN);
        let mut table = Vec::new();
        for (k, bytes, count) in sections {
            pad_to(&mut blob, SECTION_ALIGN);
            put(
                &mut table,
                &[
                    k,
                    u32w(blob.len(), "offset")?,
                    u32w(bytes.len(), "length")?,
                    u32w(count, "count")?,
                ],
            );
            blob.extend_from_slice(bytes);
        }
        pad_to(&mut blob, SECTION_ALIGN);
        blob[HEADER_LEN..HEADER_LEN + table.len()].copy_from_slice(&table);
        let body_len = u32w(blob.len() - HEADER_LEN, "body")?;
        blob[0..4].copy_from_slice(&format::MAGIC);
        blob[4..6].copy_from_slice(&format::VERSION.to_le_bytes());
        blob[8..12].copy_from_slice(&body_len.to_le_bytes());
        let crc = format::crc32(&blob[HEADER_LEN..]);
        blob[12..16].copy_from_slice(&crc.to_le_bytes());
        blob[16..20].copy_from_slice(&(kind::COUNT as u32).to_le_bytes());
        Ok(blob)
    }

    /// Plan the arena with [`plan()`] and serialize.
    pub fn to_bytes_planned(&self) -> Result<Vec<u8>, WriteError> {
        self.to_bytes(&plan(self))
    }

    /// Number of width entries `op` needs.
    pub fn n_keys(&self, op: &OpDef) -> usize {
        let n = |s: usize| self.segments.get(s).map_or(1, |g| g.widths.len());
        n(op.segment) * op.in_segment.map_or(1, n)
    }
}

/// Convenience: `OpKind` is part of the writer's vocabulary.
pub use crate::format::OpKind as Kind;
