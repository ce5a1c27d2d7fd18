//! Export of an edgeslim model blob, at one width configuration, as an int8 TFLite flatbuffer.
//!
//! The exported graph is the blob's own arithmetic with TFLite's operators: the same int8
//! weights (the active first-k slices at the chosen widths), the same biases, tensor scales and
//! zero points; per-channel weight scales chosen so that TFLite's own multiplier derivation
//! (`QuantizeMultiplier(input_scale * filter_scale / output_scale)` in double precision)
//! reproduces the blob's `(multiplier, shift)` where a 32-bit float allows it. TFLite's kernels
//! round twice (`SaturatingRoundingDoublingHighMul`, then a rounding shift) where edgeslim rounds
//! once, so an output can differ by one step at a rounding tie; see `docs/tflite.md`.
//!
//! How the blob's ops become TFLite operators:
//!
//! | edgeslim op | TFLite |
//! |---|---|
//! | Conv2d (one group) | `CONV_2D`, per-channel int8 filter `[O, KH, KW, I]` |
//! | Conv2d (grouped) | `CONV_2D` version 6, filter `[O, KH, KW, I / groups]` |
//! | Conv2d (depthwise) | `DEPTHWISE_CONV_2D`, filter `[1, KH, KW, O]` |
//! | FullyConnected | `RESHAPE` to `[1, 1, 1, positions * channels]` + `CONV_2D` 1x1 (per-channel) |
//! | Add (two inputs, plain or subtracting) | `ADD` / `SUB` |
//! | Add (more inputs, or scaled: ONNX Mean) | a chain of `ADD` / `SUB`, then `MUL` by a constant 1 at scale `r` when every input is scaled by `r` |
//! | Mul (same shape, or one value per channel) | `MUL` |
//! | Max / Min | `ADD` of a constant 0 to requantize an input at another quantization, `MAXIMUM` / `MINIMUM` |
//! | PRelu | `PRELU` when the slopes share one multiplier; else `MAXIMUM`/`MINIMUM` at the zero point, a 1x1 `DEPTHWISE_CONV_2D` of the slopes (per-channel) and `ADD` |
//! | Softmax | `SOFTMAX` (output scale 1/256, zero point -128; `beta` chosen to reproduce the blob's multiplier) |
//! | GatherChannels | `GATHER` on axis 3, constant int32 indices |
//! | Resize (nearest, bilinear) | `RESIZE_NEAREST_NEIGHBOR` / `RESIZE_BILINEAR` with the `align_corners` / `half_pixel_centers` under which TFLite reads the runtime's positions and weights |
//! | ConvTranspose (no dilation) | `TRANSPOSE_CONV` (per-channel, bias), `SAME`/`VALID`, or `VALID` + `SLICE` for other padding; groups: `SPLIT`, one `TRANSPOSE_CONV` per group, `CONCATENATION` |
//! | MaxPool | `MAX_POOL_2D` (+ an `ADD` of 0 when the output is requantized) |
//! | AvgPool | `AVERAGE_POOL_2D` (+ an `ADD` of 0), or `MEAN` over the window when it covers the input |
//! | GlobalAvgPool | `MEAN` over H and W |
//! | Reshape | `RESHAPE` |
//! | Concat | an `ADD` of 0 requantizing each input at another quantization, `CONCATENATION` on channels |
//! | Lut (the int8 tables of Sigmoid, Tanh, HardSwish, LeakyRelu, ...) | `CAST` to int32, `ADD` 128, `GATHER` from the 256-entry table |
//! | Transpose | `TRANSPOSE` |
//! | Pad (constant, reflect, edge) | `PAD` / `PADV2` / `MIRROR_PAD` (`REFLECT`; edge: `SYMMETRIC` by one row or column at a time) |
//!
//! Padding that is neither TFLite's `SAME` nor `VALID` becomes an explicit `PAD` (zero point)
//! or `PADV2` (-128, before a max pool) and a `VALID` operator; a fused clamp that is neither
//! `RELU` nor `RELU6` at the output's quantization becomes `MAXIMUM`/`MINIMUM` with constants.
//! What has no TFLite form is refused with an error naming the op: a dilated transposed
//! convolution, a Resize whose positions or weights no flag setting reproduces, an
//! Add whose inputs are scaled by different factors, a Softmax output labelled other than
//! 1/256.

use edgeslim_runtime::format::attr;
use edgeslim_runtime::{Entry, Model, OpInfo, OpKind, TaskMask, WidthConfig};
use std::collections::HashMap;

mod channels;
mod conv_transpose;
mod elementwise;
mod resize;
pub mod schema;

use schema::{Activation, Options, Padding, Quant, Tensor, op, tensor_type};

/// Why a model cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An op the exporter has no TFLite form for.
    #[error("op {index} ({kind}) cannot be exported to TFLite: {reason}")]
    Unsupported {
        /// Op index in the blob.
        index: usize,
        /// Op kind.
        kind: &'static str,
        /// Why.
        reason: String,
    },
    /// A bad request (unknown segment, invalid widths, nothing to export).
    #[error("{0}")]
    Request(String),
    /// The blob's own checks.
    #[error("invalid model blob: {0}")]
    Model(#[from] edgeslim_runtime::Error),
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The width configuration.
    pub widths: WidthConfig,
    /// The tasks whose outputs the graph computes.
    pub tasks: TaskMask,
    /// What part of the network to write.
    pub part: Part,
}

/// The part of the network an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything the selected tasks run.
    All,
    /// One segment: its inputs are the tensors it reads from other segments, its outputs the
    /// tensors others read of it and its tasks' outputs.
    Segment(usize),
    /// One op (by blob index) alone: its inputs and its output.
    Op(usize),
}

/// One input or output of the exported graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// The name of the TFLite tensor.
    pub name: String,
    /// The blob's tensor index.
    pub tensor: usize,
    /// NHWC shape, batch 1 (`[1, C]` for a fully connected output).
    pub shape: Vec<usize>,
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
}

/// An exported model.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The `.tflite` bytes.
    pub bytes: Vec<u8>,
    /// Graph inputs, int8.
    pub inputs: Vec<Port>,
    /// Graph outputs, int8.
    pub outputs: Vec<Port>,
    /// TFLite operators written.
    pub operators: usize,
    /// Channels whose multiplier TFLite will derive differently from the blob's (a float
    /// filter scale cannot reproduce every 31-bit multiplier), out of all per-channel ones.
    pub multiplier_mismatches: (usize, usize),
}

/// Export `model` as `opts` asks.
pub fn export(model: &Model<'_>, opts: &ExportOptions) -> Result<Exported, ExportError> {
    opts.widths.validate(model)?;
    opts.tasks.validate(model)?;
    let mut segments: u32 = 1;
    for t in 0..model.num_tasks() {
        if opts.tasks.contains(t) {
            segments |= 1 << model.task_segment(t);
        }
    }
    if let Part::Segment(s) = opts.part {
        if s >= model.num_segments() {
            return Err(ExportError::Request(format!(
                "segment {s} does not exist (the model has {})",
                model.num_segments()
            )));
        }
        if segments & (1 << s) == 0 {
            return Err(ExportError::Request(format!(
                "segment {s} runs for none of the selected tasks"
            )));
        }
    }
    let mut ops = Vec::new();
    for i in 0..model.num_ops() {
        let o = model
            .op(i)
            .ok_or_else(|| ExportError::Request(format!("op {i} unreadable")))?;
        if segments & (1 << o.segment) != 0 {
            ops.push((i, o));
        }
    }
    if let Part::Op(i) = opts.part {
        match model.op(i) {
            Some(o) if segments & (1 << o.segment) != 0 => {}
            Some(_) => {
                return Err(ExportError::Request(format!(
                    "op {i} runs for none of the selected tasks"
                )));
            }
            None => {
                return Err(ExportError::Request(format!(
                    "op {i} does not exist (the model has {})",
                    model.num_ops()
                )));
            }
        }
    }
    let selected = |i: usize, o: &OpInfo| match opts.part {
        Part::All => true,
        Part::Segment(s) => o.segment == s,
        Part::Op(k) => i == k,
    };
    let mut ex = Ex::new(model, opts.widths);
    // Inputs: the graph input, or for a segment every tensor it reads that it does not produce.
    let produced: Vec<usize> = ops
        .iter()
        .filter(|(i, o)| selected(*i, o))
        .map(|(_, o)| o.output)
        .collect();
    let mut inputs = Vec::new();
    if opts.part == Part::All {
        inputs.push(model.input_index());
    } else {
        for (_, o) in ops.iter().filter(|(i, o)| selected(*i, o)) {
            for k in 0..o.n_inputs {
                let t = model.op_input(o, k);
                if !produced.contains(&t) && !inputs.contains(&t) {
                    inputs.push(t);
                }
            }
        }
    }
    for &t in &inputs {
        ex.activation(t)?;
    }
    for (i, o) in ops.iter().filter(|(i, o)| selected(*i, o)) {
        ex.op(*i, o)?;
    }
    // Outputs: the selected tasks' outputs computed here, and for a segment what the other
    // running segments read of it.
    let mut outputs = Vec::new();
    for k in 0..model.num_outputs() {
        let Some(out) = model.output(k) else { continue };
        if opts.tasks.contains(out.task) && produced.contains(&out.tensor) {
            outputs.push(out.tensor);
        }
    }
    if let Part::Op(i) = opts.part {
        outputs = vec![
            ops.iter()
                .find(|(k, _)| *k == i)
                .map(|(_, o)| o.output)
                .unwrap_or(0),
        ];
    } else if opts.part != Part::All {
        for (_, o) in ops.iter().filter(|(i, o)| !selected(*i, o)) {
            for k in 0..o.n_inputs {
                let t = model.op_input(o, k);
                if produced.contains(&t) && !outputs.contains(&t) {
                    outputs.push(t);
                }
            }
        }
    }
    if outputs.is_empty() {
        return Err(ExportError::Request(
            "the selection computes no output".into(),
        ));
    }
    let port = |ex: &mut Ex<'_, '_>, t: usize| -> Result<Port, ExportError> {
        let idx = ex.activation(t)?;
        let tt = &ex.g.tensors[idx as usize];
        let q = tt.quant.clone().unwrap_or_default();
        Ok(Port {
            name: tt.name.clone(),
            tensor: t,
            shape: tt.shape.iter().map(|&d| d as usize).collect(),
            scale: q.scale.first().copied().unwrap_or(0.0),
            zero_point: q.zero_point.first().copied().unwrap_or(0) as i32,
        })
    };
    let inputs: Vec<Port> = inputs
        .iter()
        .map(|&t| port(&mut ex, t))
        .collect::<Result<_, _>>()?;
    let outputs: Vec<Port> = outputs
        .iter()
        .map(|&t| port(&mut ex, t))
        .collect::<Result<_, _>>()?;
    ex.g.inputs = inputs.iter().map(|p| ex.map[&p.tensor]).collect();
    ex.g.outputs = outputs.iter().map(|p| ex.map[&p.tensor]).collect();
    ex.g.name = match opts.part {
        Part::All => "main".into(),
        Part::Segment(s) => model.segment(s).map(|s| s.name).unwrap_or("").to_string(),
        Part::Op(i) => format!("op{i}"),
    };
    ex.g.description = format!(
        "edgeslim export of {} at widths {:?}",
        model.name(),
        opts.widths.as_slice()
    );
    Ok(Exported {
        bytes: ex.g.to_bytes(),
        inputs,
        outputs,
        operators: ex.g.operators.len(),
        multiplier_mismatches: ex.mismatches,
    })
}

/// `QuantizeMultiplier` as TFLite computes it (the runtime's host helper is that definition).
pub use edgeslim_runtime::quant::host::quantize_multiplier as tflite_multiplier;

/// The real value of a `(multiplier, shift)` pair.
fn real(m: i32, s: i32) -> f64 {
    m as f64 / 2f64.powi(31) * 2f64.powi(s)
}

/// Whether the blob's `(m, s)` is the real multiplier `want` (within 1e-3: the compiler
/// derives it from the same float scales TFLite does; anything else is another computation).
fn rescales_by(m: i32, s: i32, want: f64) -> bool {
    want > 0.0 && want.is_finite() && (real(m, s) / want - 1.0).abs() <= 1e-3
}

/// A per-channel filter scale for which TFLite derives `(m, s)` from `s_in` and `s_out`, or
/// the nearest float that does (`false`: not exactly).
pub fn filter_scale(s_in: f32, s_out: f32, m: i32, s: i32) -> (f32, bool) {
    let target = real(m, s);
    let f0 = (target * s_out as f64 / s_in as f64) as f32;
    if !(f0.is_finite() && f0 > 0.0) {
        return (f0.max(f32::MIN_POSITIVE), m == 0);
    }
    let mut best = (f0, f64::INFINITY);
    for k in -64i64..=64 {
        let f = f32::from_bits((f0.to_bits() as i64 + k) as u32);
        let (m2, s2) = tflite_multiplier(s_in as f64 * f as f64 / s_out as f64);
        if (m2, s2) == (m, s) {
            return (f, true);
        }
        let d = (real(m2, s2) - target).abs();
        if d < best.1 {
            best = (f, d);
        }
    }
    (best.0, false)
}

/// The exporter's state: the graph written so far and the blob tensors it holds.
struct Ex<'a, 'm> {
    m: &'a Model<'m>,
    w: WidthConfig,
    g: schema::Model,
    map: HashMap<usize, i32>,
    codes: HashMap<i32, u32>,
    mismatches: (usize, usize),
}

impl<'a, 'm> Ex<'a, 'm> {
    fn new(m: &'a Model<'m>, w: WidthConfig) -> Self {
        let g = schema::Model {
            buffers: vec![Vec::new()],
            ..Default::default()
        };
        Ex {
            m,
            w,
            g,
            map: HashMap::new(),
            codes: HashMap::new(),
            mismatches: (0, 0),
        }
    }

    fn tensor(&mut self, t: Tensor) -> i32 {
        self.g.tensors.push(t);
        self.g.tensors.len() as i32 - 1
    }

    fn buffer(&mut self, data: Vec<u8>) -> u32 {
        self.g.buffers.push(data);
        self.g.buffers.len() as u32 - 1
    }

    fn per_tensor(scale: f32, zp: i32) -> Option<Quant> {
        Some(Quant {
            scale: vec![scale],
            zero_point: vec![zp as i64],
            dimension: 0,
        })
    }

    /// A new int8 activation tensor.
    fn temp(&mut self, name: String, shape: Vec<i32>, scale: f32, zp: i32) -> i32 {
        self.tensor(Tensor {
            shape,
            ty: tensor_type::INT8,
            buffer: 0,
            name,
            quant: Self::per_tensor(scale, zp),
        })
    }

    /// A constant int32 tensor.
    fn const_i32(&mut self, name: String, shape: Vec<i32>, v: &[i32]) -> i32 {
        let buffer = self.buffer(v.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.tensor(Tensor {
            shape,
            ty: tensor_type::INT32,
            buffer,
            name,
            quant: None,
        })
    }

    /// The TFLite tensor of blob tensor `t` at the active widths (created on first use).
    fn activation(&mut self, t: usize) -> Result<i32, ExportError> {
        if let Some(&i) = self.map.get(&t) {
            return Ok(i);
        }
        let info = self
            .m
            .tensor(t)
            .ok_or_else(|| ExportError::Request(format!("tensor {t} does not exist")))?;
        let (c, scale, zp) = self.m.tensor_quant(t, &self.w);
        let name = if info.name.is_empty() {
            format!("t{t}")
        } else {
            info.name.to_string()
        };
        let i = self.temp(
            name,
            vec![1, info.h as i32, info.w as i32, c as i32],
            scale,
            zp,
        );
        self.map.insert(t, i);
        Ok(i)
    }

    /// The TFLite tensors of op `o`'s first input and output, and its width entry.
    fn io(&mut self, o: &OpInfo) -> Result<(i32, i32, Entry<'m>), ExportError> {
        let x = self.activation(self.m.op_input(o, 0))?;
        let out = self.activation(o.output)?;
        Ok((x, out, self.m.entry(o, self.m.key(o, &self.w))))
    }

    fn shape(&self, i: i32) -> Vec<i32> {
        self.g.tensors[i as usize].shape.clone()
    }

    fn quant(&self, i: i32) -> (f32, i32) {
        let q = self.g.tensors[i as usize].quant.as_ref();
        (
            q.and_then(|q| q.scale.first().copied()).unwrap_or(1.0),
            q.and_then(|q| q.zero_point.first().copied()).unwrap_or(0) as i32,
        )
    }

    fn push(&mut self, code: i32, version: i32, inputs: Vec<i32>, outputs: Vec<i32>, o: Options) {
        let n = self.codes.len() as u32;
        let opcode = *self.codes.entry(code).or_insert(n);
        if opcode == n {
            self.g.opcodes.push((code, version));
        }
        // One operator code per builtin, at the highest version any of its uses needs.
        let v = &mut self.g.opcodes[opcode as usize].1;
        *v = (*v).max(version);
        self.g.operators.push(schema::Operator {
            opcode,
            inputs,
            outputs,
            options: o,
        });
    }

    /// The fused activation TFLite derives that equals the clamp `(lo, hi)` at the output's
    /// quantization, if any.
    fn fused(lo: i8, hi: i8, scale: f32, zp: i32) -> Option<Activation> {
        let (lo, hi) = (lo as i32, hi as i32);
        let q6 = (zp + (6.0f32 / scale).round() as i32).min(127);
        match (lo, hi) {
            (-128, 127) => Some(Activation::None),
            _ if lo == zp.max(-128) && hi == 127 => Some(Activation::Relu),
            _ if lo == zp.max(-128) && hi == q6 => Some(Activation::Relu6),
            _ => None,
        }
    }

    /// Write an operator whose output is `out` with the clamp `(lo, hi)`: fused when TFLite
    /// has that activation, else the operator writes a temporary and MAXIMUM/MINIMUM clamp it.
    fn emit_clamped(
        &mut self,
        code: i32,
        version: i32,
        inputs: Vec<i32>,
        out: i32,
        act: (i8, i8),
        options: impl Fn(Activation) -> Options,
    ) {
        let (scale, zp) = self.quant(out);
        if let Some(a) = Self::fused(act.0, act.1, scale, zp) {
            self.push(code, version, inputs, vec![out], options(a));
            return;
        }
        let raw = self.like(out, "unclamped");
        self.push(code, version, inputs, vec![raw], options(Activation::None));
        self.clamp(raw, out, act);
    }

    /// A new tensor with `t`'s shape and quantization, named after it.
    fn like(&mut self, t: i32, suffix: &str) -> i32 {
        let name = format!("{}/{suffix}", self.g.tensors[t as usize].name);
        let (scale, zp) = self.quant(t);
        let shape = self.shape(t);
        self.temp(name, shape, scale, zp)
    }

    /// `out = min(max(raw, act.0), act.1)` with `MAXIMUM`/`MINIMUM` and int8 constants at
    /// `out`'s quantization (exact), or a plain copy of the values when `act` is all of int8.
    fn clamp(&mut self, raw: i32, out: i32, act: (i8, i8)) {
        let (scale, zp) = self.quant(out);
        let name = self.g.tensors[out as usize].name.clone();
        let lo = self.const_i8(format!("{name}/min"), act.0, scale, zp);
        let hi = self.const_i8(format!("{name}/max"), act.1, scale, zp);
        let mid = self.like(out, "low_clamped");
        self.push(op::MAXIMUM, 2, vec![raw, lo], vec![mid], Options::MaxMin);
        self.push(op::MINIMUM, 2, vec![mid, hi], vec![out], Options::MaxMin);
    }

    fn const_i8(&mut self, name: String, v: i8, scale: f32, zp: i32) -> i32 {
        let buffer = self.buffer(vec![v as u8]);
        self.tensor(Tensor {
            shape: vec![],
            ty: tensor_type::INT8,
            buffer,
            name,
            quant: Self::per_tensor(scale, zp),
        })
    }

    /// Pad `x` explicitly (`[top, bottom, left, right]`) with its zero point, or with `fill`
    /// (`PADV2`).
    fn pad(&mut self, x: i32, p: [usize; 4], fill: Option<i8>) -> i32 {
        let (scale, zp) = self.quant(x);
        let s = self.shape(x);
        let name = self.g.tensors[x as usize].name.clone();
        let shape = vec![
            1,
            s[1] + (p[0] + p[1]) as i32,
            s[2] + (p[2] + p[3]) as i32,
            s[3],
        ];
        let out = self.temp(format!("{name}/padded"), shape, scale, zp);
        let pads = [0, 0, p[0], p[1], p[2], p[3], 0, 0].map(|v| v as i32);
        let pads = self.const_i32(format!("{name}/paddings"), vec![4, 2], &pads);
        match fill {
            None => self.push(op::PAD, 2, vec![x, pads], vec![out], Options::Pad),
            Some(v) => {
                let c = self.const_i8(format!("{name}/pad_value"), v, scale, zp);
                self.push(op::PADV2, 2, vec![x, pads, c], vec![out], Options::PadV2)
            }
        }
        out
    }

    /// Write op `i`.
    fn op(&mut self, i: usize, o: &OpInfo) -> Result<(), ExportError> {
        let unsupported = |reason: &str| ExportError::Unsupported {
            index: i,
            kind: o.kind.name(),
            reason: reason.to_string(),
        };
        match o.kind {
            OpKind::Conv2d => self.conv(i, o, &unsupported),
            OpKind::FullyConnected => self.fully_connected(i, o, &unsupported),
            OpKind::Add => self.add(i, o, &unsupported),
            OpKind::MaxPool | OpKind::AvgPool => self.pool(i, o, &unsupported),
            OpKind::GlobalAvgPool => self.global_pool(o),
            OpKind::Reshape => {
                let x = self.activation(self.m.op_input(o, 0))?;
                let out = self.activation(o.output)?;
                let (a, b) = (self.shape(x), self.shape(out));
                if a.iter().product::<i32>() != b.iter().product::<i32>() {
                    return Err(unsupported(
                        "the reshaped tensor holds a different number of active values",
                    ));
                }
                let new_shape = b.clone();
                let s = self.const_i32(format!("t{}/shape", o.output), vec![4], &b);
                self.push(
                    op::RESHAPE,
                    1,
                    vec![x, s],
                    vec![out],
                    Options::Reshape { new_shape },
                );
                Ok(())
            }
            OpKind::Concat => {
                let xs = (0..o.n_inputs)
                    .map(|k| self.activation(self.m.op_input(o, k)))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self.activation(o.output)?;
                let en = self.m.entry(o, self.m.key(o, &self.w));
                // int8 CONCATENATION takes inputs at the output's quantization: requantize
                // the others first (the runtime rescales each input the same way).
                let (s, zp) = self.quant(out);
                let mut ins = Vec::with_capacity(xs.len());
                for x in xs {
                    if self.quant(x) == (s, zp) {
                        ins.push(x);
                    } else {
                        let name = self.g.tensors[x as usize].name.clone();
                        let shape = self.shape(x);
                        let q = self.temp(format!("{name}/requantized"), shape, s, zp);
                        self.requantize(x, q);
                        ins.push(q);
                    }
                }
                self.emit_clamped(op::CONCATENATION, 3, ins, out, en.act(), |act| {
                    Options::Concat { axis: 3, act }
                });
                Ok(())
            }
            OpKind::Lut => self.lut(o),
            OpKind::Transpose => {
                let x = self.activation(self.m.op_input(o, 0))?;
                let out = self.activation(o.output)?;
                let p = edgeslim_runtime::ops::transpose::perm(o)
                    .ok_or_else(|| unsupported("invalid permutation"))?;
                let xs = self.shape(x);
                let perm = [0, 1 + p[0] as i32, 1 + p[1] as i32, 1 + p[2] as i32];
                if perm.map(|a| xs[a as usize]).to_vec() != self.shape(out) {
                    return Err(unsupported("the permuted active shape is not the output's"));
                }
                let pt = self.const_i32(format!("op{i}/perm"), vec![4], &perm);
                self.push(op::TRANSPOSE, 2, vec![x, pt], vec![out], Options::Transpose);
                Ok(())
            }
            OpKind::Pad => self.pad_op(i, o, &unsupported),
            OpKind::Mul => self.mul(i, o, &unsupported),
            OpKind::MinMax => self.minmax(i, o, &unsupported),
            OpKind::PRelu => self.prelu(i, o, &unsupported),
            OpKind::Softmax => self.softmax(i, o, &unsupported),
            OpKind::GatherChannels => self.gather_channels(i, o, &unsupported),
            OpKind::Resize => self.resize(i, o, &unsupported),
            OpKind::ConvTranspose => self.conv_transpose(i, o, &unsupported),
        }
    }

    /// A 256-entry table op: `out = table[x + 128]` as `GATHER` on int32 indices, exact.
    fn lut(&mut self, o: &OpInfo) -> Result<(), ExportError> {
        let (x, out, en) = self.io(o)?;
        let table = edgeslim_runtime::ops::lut::table(&en).to_vec();
        let (s_out, zp_out) = self.quant(out);
        let name = self.g.tensors[out as usize].name.clone();
        let shape = self.shape(x);
        let idx = self.tensor(Tensor {
            shape: shape.clone(),
            ty: tensor_type::INT32,
            buffer: 0,
            name: format!("{name}/as_int32"),
            quant: None,
        });
        self.push(op::CAST, 1, vec![x], vec![idx], Options::None);
        let offset = self.const_i32(format!("{name}/offset"), vec![1], &[128]);
        let shifted = self.tensor(Tensor {
            shape,
            ty: tensor_type::INT32,
            buffer: 0,
            name: format!("{name}/index"),
            quant: None,
        });
        self.push(
            op::ADD,
            1,
            vec![idx, offset],
            vec![shifted],
            Options::Add {
                act: Activation::None,
            },
        );
        let buffer = self.buffer(table.iter().map(|&v| v as u8).collect());
        let t = self.tensor(Tensor {
            shape: vec![256],
            ty: tensor_type::INT8,
            buffer,
            name: format!("{name}/table"),
            quant: Self::per_tensor(s_out, zp_out),
        });
        self.push(
            op::GATHER,
            2,
            vec![t, shifted],
            vec![out],
            Options::Gather { axis: 0 },
        );
        Ok(())
    }

    /// Pad with a constant (`PAD` with the zero point, or `PADV2`) or by reflection
    /// (`MIRROR_PAD`), when the copy keeps the quantization.
    fn pad_op(
        &mut self,
        i: usize,
        o: &OpInfo,
        unsupported: &dyn Fn(&str) -> ExportError,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::kernels::PadMode;
        use edgeslim_runtime::ops::pad::{mode, word};
        let (x, out, en) = self.io(o)?;
        if self.quant(x) != self.quant(out) || en.act() != (-128, 127) {
            return Err(unsupported("a Pad that requantizes or clamps"));
        }
        let (xs, os) = (self.shape(x), self.shape(out));
        let (top, left) = (
            o.attrs[attr::PAD_TOP] as i32,
            o.attrs[attr::PAD_LEFT] as i32,
        );
        let (bottom, right) = (os[1] - xs[1] - top, os[2] - xs[2] - left);
        if bottom < 0 || right < 0 {
            return Err(unsupported("a Pad that crops"));
        }
        let pads = [0, 0, top, bottom, left, right, 0, 0];
        let pt = self.const_i32(format!("op{i}/paddings"), vec![4, 2], &pads);
        let (s, zp) = self.quant(out);
        match mode(o) {
            Some(PadMode::Constant) => {
                let v = en.extra(word::VALUE).clamp(-128, 127) as i8;
                if v as i32 == zp {
                    self.push(op::PAD, 2, vec![x, pt], vec![out], Options::Pad);
                } else {
                    let c = self.const_i8(format!("op{i}/pad_value"), v, s, zp);
                    self.push(op::PADV2, 2, vec![x, pt, c], vec![out], Options::PadV2);
                }
            }
            Some(PadMode::Reflect) => {
                self.push(
                    op::MIRROR_PAD,
                    2,
                    vec![x, pt],
                    vec![out],
                    Options::MirrorPad { mode: 0 },
                );
            }
            Some(PadMode::Edge) => {
                // MIRROR_PAD's SYMMETRIC mode repeats the border row once: padding by one
                // row or column at a time, as many times as the widest side needs, repeats it
                // as often as edge padding does (a copy: exact).
                let sides = [top, bottom, left, right];
                let steps = sides.iter().copied().max().unwrap_or(0);
                let mut cur = x;
                let mut shape = xs.clone();
                for k in 0..steps {
                    let p = sides.map(|v| i32::from(v > k));
                    shape[1] += p[0] + p[1];
                    shape[2] += p[2] + p[3];
                    let next = if k + 1 == steps {
                        out
                    } else {
                        self.temp(format!("op{i}/edge{k}"), shape.clone(), s, zp)
                    };
                    let pads = [0, 0, p[0], p[1], p[2], p[3], 0, 0];
                    let pt = self.const_i32(format!("op{i}/paddings{k}"), vec![4, 2], &pads);
                    self.push(
                        op::MIRROR_PAD,
                        2,
                        vec![cur, pt],
                        vec![next],
                        Options::MirrorPad { mode: 1 },
                    );
                    cur = next;
                }
                if steps == 0 {
                    self.push(op::PAD, 2, vec![x, pt], vec![out], Options::Pad);
                }
            }
            None => return Err(unsupported("an unknown padding mode")),
        }
        Ok(())
    }

    /// The `(bias, multiplier, shift)` of the first `n` channels of an entry.
    fn channels(&self, en: &Entry<'_>, n: usize) -> Vec<(i32, i32, i32)> {
        let b = self.m.channel_bytes(en, n);
        b.chunks_exact(12)
            .map(|c| {
                let w = |k: usize| i32::from_le_bytes([c[k], c[k + 1], c[k + 2], c[k + 3]]);
                (w(0), w(4), w(8))
            })
            .collect()
    }

    /// Filter quantization and bias tensor for per-channel `(bias, m, s)` triples.
    fn filter_and_bias(
        &mut self,
        name: &str,
        data: Vec<i8>,
        shape: Vec<i32>,
        dim: i32,
        ch: &[(i32, i32, i32)],
        (s_in, s_out): (f32, f32),
    ) -> (i32, i32) {
        let mut scales = Vec::with_capacity(ch.len());
        for &(_, m, s) in ch {
            let (f, exact) = filter_scale(s_in, s_out, m, s);
            self.mismatches.1 += 1;
            if !exact {
                self.mismatches.0 += 1;
            }
            scales.push(f);
        }
        let buffer = self.buffer(data.iter().map(|&v| v as u8).collect());
        let filter = self.tensor(Tensor {
            shape,
            ty: tensor_type::INT8,
            buffer,
            name: format!("{name}/weights"),
            quant: Some(Quant {
                scale: scales.clone(),
                zero_point: vec![0; ch.len()],
                dimension: dim,
            }),
        });
        let bias: Vec<i32> = ch.iter().map(|c| c.0).collect();
        let buffer = self.buffer(bias.iter().flat_map(|v| v.to_le_bytes()).collect());
        let bias = self.tensor(Tensor {
            shape: vec![ch.len() as i32],
            ty: tensor_type::INT32,
            buffer,
            name: format!("{name}/bias"),
            quant: Some(Quant {
                scale: scales.iter().map(|f| s_in * f).collect(),
                zero_point: vec![0; ch.len()],
                dimension: 0,
            }),
        });
        (filter, bias)
    }

    fn conv(
        &mut self,
        _i: usize,
        o: &OpInfo,
        unsupported: &dyn Fn(&str) -> ExportError,
    ) -> Result<(), ExportError> {
        let a = &o.attrs;
        let depthwise = a[attr::DEPTHWISE] == 1;
        let groups = (a[attr::GROUPS] as usize).max(1);
        let (mut x, out, en) = self.io(o)?;
        let (s_in, _) = self.quant(x);
        let (s_out, _) = self.quant(out);
        let (xs, os) = (self.shape(x), self.shape(out));
        let (in_c, out_c) = (xs[3] as usize, os[3] as usize);
        let [wo, kh, kw, wi] = o.wshape;
        let w = self.m.weights(o);
        let wt = |idx: usize| w.get(idx).map(|&b| b as i8).unwrap_or(0);
        let ch = self.channels(&en, out_c);
        if ch.len() != out_c || out_c > wo {
            return Err(unsupported(
                "channel table shorter than the active channels",
            ));
        }
        let stride = [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize];
        let dil = [a[attr::DIL_H] as usize, a[attr::DIL_W] as usize];
        let pad_before = [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize];
        let k = [kh, kw];
        let (padding, explicit) = padding(
            [xs[1] as usize, xs[2] as usize],
            [os[1] as usize, os[2] as usize],
            k,
            stride,
            dil,
            pad_before,
        )
        .ok_or_else(|| unsupported("its padding and output size have no TFLite form"))?;
        if let Some(p) = explicit {
            x = self.pad(x, p, None);
        }
        let name = format!("op{_i}");
        let stride_i = stride.map(|v| v as i32);
        let dil_i = dil.map(|v| v as i32);
        if depthwise {
            let mult = out_c / in_c.max(1);
            let mut data = vec![0i8; kh * kw * out_c];
            for oc in 0..out_c {
                for t in 0..kh * kw {
                    data[t * out_c + oc] = wt(oc * kh * kw + t);
                }
            }
            let (f, b) = self.filter_and_bias(
                &name,
                data,
                vec![1, kh as i32, kw as i32, out_c as i32],
                3,
                &ch,
                (s_in, s_out),
            );
            self.emit_clamped(
                op::DEPTHWISE_CONV_2D,
                3,
                vec![x, f, b],
                out,
                en.act(),
                |act| Options::Depthwise {
                    padding,
                    stride: stride_i,
                    dilation: dil_i,
                    multiplier: mult as i32,
                    act,
                },
            );
        } else {
            // A grouped convolution is TFLite's CONV_2D with a filter of `in_c / groups`
            // columns (version 6): output channel `o` reads the input channels of group
            // `o / (out_c / groups)`, as the runtime's.
            let cin_g = in_c / groups;
            if in_c % groups != 0 || out_c % groups != 0 || cin_g > wi {
                return Err(unsupported(
                    "active channels that do not split into the groups, or more active input \
                     channels than weight columns",
                ));
            }
            let mut data = Vec::with_capacity(out_c * kh * kw * cin_g);
            for oc in 0..out_c {
                for t in 0..kh * kw {
                    for ic in 0..cin_g {
                        data.push(wt((oc * kh * kw + t) * wi + ic));
                    }
                }
            }
            let (f, b) = self.filter_and_bias(
                &name,
                data,
                vec![out_c as i32, kh as i32, kw as i32, cin_g as i32],
                0,
                &ch,
                (s_in, s_out),
            );
            let version = if groups > 1 { 6 } else { 3 };
            self.emit_clamped(op::CONV_2D, version, vec![x, f, b], out, en.act(), |act| {
                Options::Conv2d {
                    padding,
                    stride: stride_i,
                    dilation: dil_i,
                    act,
                }
            });
        }
        Ok(())
    }

    fn fully_connected(
        &mut self,
        i: usize,
        o: &OpInfo,
        unsupported: &dyn Fn(&str) -> ExportError,
    ) -> Result<(), ExportError> {
        let (x, out, en) = self.io(o)?;
        let (xs, os) = (self.shape(x), self.shape(out));
        let positions = (xs[1] * xs[2]) as usize;
        let (in_c, out_c) = (xs[3] as usize, os[3] as usize);
        let [wo, wp, wi, _] = o.wshape;
        if os[1] != 1 || os[2] != 1 || wp != positions || in_c > wi || out_c > wo {
            return Err(unsupported("its weight shape does not match its tensors"));
        }
        let (s_in, zp_in) = self.quant(x);
        let (s_out, _) = self.quant(out);
        let k = positions * in_c;
        let flat = if positions == 1 {
            x
        } else {
            let name = self.g.tensors[x as usize].name.clone();
            let f = self.temp(format!("{name}/flat"), vec![1, 1, 1, k as i32], s_in, zp_in);
            let s = self.const_i32(format!("{name}/flat_shape"), vec![4], &[1, 1, 1, k as i32]);
            self.push(
                op::RESHAPE,
                1,
                vec![x, s],
                vec![f],
                Options::Reshape {
                    new_shape: vec![1, 1, 1, k as i32],
                },
            );
            f
        };
        let w = self.m.weights(o);
        let mut data = Vec::with_capacity(out_c * k);
        for oc in 0..out_c {
            for p in 0..positions {
                for ic in 0..in_c {
                    data.push(
                        w.get((oc * wp + p) * wi + ic)
                            .map(|&b| b as i8)
                            .unwrap_or(0),
                    );
                }
            }
        }
        let ch = self.channels(&en, out_c);
        if ch.len() != out_c {
            return Err(unsupported(
                "channel table shorter than the active channels",
            ));
        }
        let (f, b) = self.filter_and_bias(
            &format!("op{i}"),
            data,
            vec![out_c as i32, 1, 1, k as i32],
            0,
            &ch,
            (s_in, s_out),
        );
        self.emit_clamped(op::CONV_2D, 3, vec![flat, f, b], out, en.act(), |act| {
            Options::Conv2d {
                padding: Padding::Valid,
                stride: [1, 1],
                dilation: [1, 1],
                act,
            }
        });
        Ok(())
    }

    /// Requantize `tmp` (at the input's quantization) into `out` when their quantization
    /// differs: an `ADD` of 0 ([`rescale`](Self::rescale)), which rounds once as the runtime
    /// does, where TFLite's `QUANTIZE` rounds twice.
    fn requantize(&mut self, tmp: i32, out: i32) {
        self.rescale(tmp, out, (-128, 127));
    }

    fn pool(
        &mut self,
        _i: usize,
        o: &OpInfo,
        unsupported: &dyn Fn(&str) -> ExportError,
    ) -> Result<(), ExportError> {
        let a = &o.attrs;
        let max = o.kind == OpKind::MaxPool;
        let (mut x, out, en) = self.io(o)?;
        let (xs, os) = (self.shape(x), self.shape(out));
        let k = [a[attr::KERNEL_H] as usize, a[attr::KERNEL_W] as usize];
        let stride = [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize];
        let pad_before = [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize];
        let include_pad = a[attr::COUNT_INCLUDE_PAD] == 1;
        let (s_in, zp_in) = self.quant(x);
        let (s_out, zp_out) = self.quant(out);
        let same_quant = s_in == s_out && zp_in == zp_out;
        // An average over the whole input without padding is a MEAN (which also rescales).
        if !max
            && pad_before == [0, 0]
            && k == [xs[1] as usize, xs[2] as usize]
            && os[1] == 1
            && os[2] == 1
        {
            return self.mean(x, out, en.act());
        }
        let (padding, explicit) = padding(
            [xs[1] as usize, xs[2] as usize],
            [os[1] as usize, os[2] as usize],
            k,
            stride,
            [1, 1],
            pad_before,
        )
        .ok_or_else(|| unsupported("its padding and output size have no TFLite form"))?;
        if let Some(p) = explicit {
            if !max && !include_pad {
                return Err(unsupported(
                    "an average pool that excludes padding which is not TFLite's SAME",
                ));
            }
            x = self.pad(x, p, max.then_some(-128));
        } else if !max && include_pad && padding == Padding::Same && pad_before != [0, 0] {
            return Err(unsupported(
                "an average pool that counts padding (TFLite's SAME does not)",
            ));
        }
        let code = if max {
            op::MAX_POOL_2D
        } else {
            op::AVERAGE_POOL_2D
        };
        let opts = |act| Options::Pool {
            padding,
            stride: stride.map(|v| v as i32),
            filter: k.map(|v| v as i32),
            act,
        };
        if same_quant {
            self.emit_clamped(code, 2, vec![x], out, en.act(), opts);
        } else {
            let name = self.g.tensors[out as usize].name.clone();
            let tmp = self.temp(format!("{name}/pooled"), os, s_in, zp_in);
            self.push(code, 2, vec![x], vec![tmp], opts(Activation::None));
            self.requantize_clamped(tmp, out, en.act());
        }
        Ok(())
    }

    /// Requantize `tmp` into `out` with the clamp `act` ([`rescale`](Self::rescale)).
    fn requantize_clamped(&mut self, tmp: i32, out: i32, act: (i8, i8)) {
        self.rescale(tmp, out, act);
    }

    /// Write an operator that has no fused activation into `out`, then the clamp `act` (into
    /// `out` directly when `act` is all of int8).
    fn emit_unfused(
        &mut self,
        code: i32,
        version: i32,
        inputs: Vec<i32>,
        out: i32,
        act: (i8, i8),
        options: Options,
    ) {
        if act == (-128, 127) {
            self.push(code, version, inputs, vec![out], options);
            return;
        }
        let raw = self.like(out, "unclamped");
        self.push(code, version, inputs, vec![raw], options);
        self.clamp(raw, out, act);
    }

    /// Write an operator whose values come out at quantization `q` (a copy such as `GATHER`
    /// or `RESIZE_NEAREST_NEIGHBOR`, which keeps its input's) into `out`: directly when `out`
    /// has that quantization, else into a temporary that an `ADD` of 0 requantizes; then the
    /// clamp `act`.
    #[allow(clippy::too_many_arguments)]
    fn emit_at(
        &mut self,
        code: i32,
        version: i32,
        inputs: Vec<i32>,
        q: (f32, i32),
        out: i32,
        act: (i8, i8),
        options: Options,
    ) {
        if self.quant(out) == q {
            self.emit_unfused(code, version, inputs, out, act, options);
            return;
        }
        let name = self.g.tensors[out as usize].name.clone();
        let shape = self.shape(out);
        let tmp = self.temp(format!("{name}/unrequantized"), shape, q.0, q.1);
        self.push(code, version, inputs, vec![tmp], options);
        self.rescale(tmp, out, act);
    }

    /// Tensor `x` at quantization `q`: itself when it has it, else [`Self::rescale`]d.
    fn at_quant(&mut self, x: i32, q: (f32, i32)) -> i32 {
        if self.quant(x) == q {
            return x;
        }
        let name = self.g.tensors[x as usize].name.clone();
        let shape = self.shape(x);
        let t = self.temp(format!("{name}/requantized"), shape, q.0, q.1);
        self.rescale(x, t, (-128, 127));
        t
    }

    /// Requantize `x` into `out` (another quantization) with the clamp `act`, as an `ADD` of
    /// a constant 0 at `x`'s scale rather than a `QUANTIZE`: TFLite's int8 `QUANTIZE` applies
    /// its multiplier to the 9-bit difference itself (`SaturatingRoundingDoublingHighMul`
    /// rounds it to an integer before the shift rounds again), which differs from one
    /// rounding on several percent of values at small scale ratios; `ADD` first shifts its
    /// inputs left by 20 bits, so only ties round differently.
    fn rescale(&mut self, x: i32, out: i32, act: (i8, i8)) {
        let (scale, _) = self.quant(x);
        let name = self.g.tensors[x as usize].name.clone();
        let zero = self.const_i8(format!("{name}/zero"), 0, scale, 0);
        self.emit_clamped(op::ADD, 2, vec![x, zero], out, act, |act| Options::Add {
            act,
        });
    }

    fn mean(&mut self, x: i32, out: i32, act: (i8, i8)) -> Result<(), ExportError> {
        let name = self.g.tensors[out as usize].name.clone();
        let axes = self.const_i32(format!("{name}/axes"), vec![2], &[1, 2]);
        let target = if act == (-128, 127) {
            out
        } else {
            self.like(out, "mean")
        };
        self.push(
            op::MEAN,
            2,
            vec![x, axes],
            vec![target],
            Options::Reducer { keep_dims: true },
        );
        if target != out {
            self.clamp(target, out, act);
        }
        Ok(())
    }

    fn global_pool(&mut self, o: &OpInfo) -> Result<(), ExportError> {
        let (x, out, en) = self.io(o)?;
        self.mean(x, out, en.act())
    }
}

/// TFLite's padding for a window `k` (dilation `dil`) at `stride` from `input` to `output`
/// with `before` rows/columns of padding above/left: `SAME` or `VALID` when one of them gives
/// exactly this geometry, else `VALID` after an explicit pad `[top, bottom, left, right]`.
/// `None` when no padding gives `output`.
fn padding(
    input: [usize; 2],
    output: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    dil: [usize; 2],
    before: [usize; 2],
) -> Option<(Padding, Option<[usize; 4]>)> {
    let eff = [0, 1].map(|a| (k[a] - 1) * dil[a] + 1);
    let same = (0..2).all(|a| {
        let out = input[a].div_ceil(stride[a]);
        let total = ((out - 1) * stride[a] + eff[a]).saturating_sub(input[a]);
        out == output[a] && before[a] == total / 2
    });
    if same {
        return Some((Padding::Same, None));
    }
    let valid = (0..2).all(|a| {
        before[a] == 0 && input[a] >= eff[a] && (input[a] - eff[a]) / stride[a] + 1 == output[a]
    });
    if valid {
        return Some((Padding::Valid, None));
    }
    let mut p = [0usize; 4];
    for a in 0..2 {
        let need = (output[a] - 1) * stride[a] + eff[a];
        let after = need.saturating_sub(input[a] + before[a]);
        let padded = input[a] + before[a] + after;
        if padded < eff[a] || (padded - eff[a]) / stride[a] + 1 != output[a] {
            return None;
        }
        p[2 * a] = before[a];
        p[2 * a + 1] = after;
    }
    Some((Padding::Valid, Some(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_matches_the_definition() {
        // 0.5 is q = 0.5, shift 0: 2^30.
        assert_eq!(tflite_multiplier(0.5), (1 << 30, 0));
        assert_eq!(tflite_multiplier(1.0), (1 << 30, 1));
        assert_eq!(tflite_multiplier(0.75 / 1024.0), (3 << 29, -10));
        assert_eq!(tflite_multiplier(0.0), (0, 0));
        // Rounding up to 2^31 renormalises.
        let just_below_one = 1.0 - f64::EPSILON;
        assert_eq!(tflite_multiplier(just_below_one), (1 << 30, 1));
    }

    #[test]
    fn filter_scale_reproduces_a_float_derived_multiplier() {
        let (s_in, s_out, f) = (0.0213f32, 0.0871f32, 0.00317f32);
        let (m, s) = tflite_multiplier(s_in as f64 * f as f64 / s_out as f64);
        let (g, exact) = filter_scale(s_in, s_out, m, s);
        assert!(exact);
        assert_eq!(
            tflite_multiplier(s_in as f64 * g as f64 / s_out as f64),
            (m, s)
        );
    }

    #[test]
    fn padding_forms() {
        // 3x3 stride 1 pad 1: SAME.
        assert_eq!(
            padding([8, 8], [8, 8], [3, 3], [1, 1], [1, 1], [1, 1]),
            Some((Padding::Same, None))
        );
        // No padding: VALID.
        assert_eq!(
            padding([8, 8], [6, 6], [3, 3], [1, 1], [1, 1], [0, 0]),
            Some((Padding::Valid, None))
        );
        // 3x3 stride 2 pad 1 on 8: ONNX pads 1 both sides, out 4; SAME pads 0 above, 1 below.
        assert_eq!(
            padding([8, 8], [4, 4], [3, 3], [2, 2], [1, 1], [1, 1]),
            Some((Padding::Valid, Some([1, 0, 1, 0])))
        );
        // Trailing padding the runtime implies (windows past the input's end).
        assert_eq!(
            padding([8, 8], [9, 9], [3, 3], [1, 1], [1, 1], [0, 0]),
            Some((Padding::Valid, Some([0, 3, 0, 3])))
        );
        // An output no padding gives: fewer windows than the padded input holds.
        assert_eq!(
            padding([8, 8], [1, 1], [3, 3], [1, 1], [1, 1], [0, 0]),
            None
        );
    }
}
