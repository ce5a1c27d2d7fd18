//! Lowering: the IR graph becomes runtime ops (NHWC tensors, `[O, KH, KW, I]` conv weights,
//! `[O, positions, C, 1]` fully connected weights) with segments from the manifest and the
//! active channel counts of every op at every width key. The manifest is checked against the
//! graph here.

use crate::ir::{Act, ConstQuant, Graph, Op, QParams, Unary};
use crate::manifest::{Manifest, WidthParams};
use anyhow::{Result, bail};
use edgeslim_runtime::OpKind;
use edgeslim_runtime::format::{attr, op_field};
use edgeslim_runtime::width::encoder;

/// A task of the lowered model.
#[derive(Debug, Clone)]
pub struct LTask {
    /// Name.
    pub name: String,
    /// Segment.
    pub segment: usize,
    /// `(graph output name, tensor)`.
    pub outputs: Vec<(String, usize)>,
}

/// An activation tensor, NHWC at full width.
#[derive(Debug, Clone)]
pub struct LTensor {
    /// Name.
    pub name: String,
    /// `[h, w, c]`.
    pub shape: [usize; 3],
    /// Segment of the producer (the encoder for the input).
    pub segment: usize,
    /// Quantization stated by the file (full width).
    pub quant: Option<QParams>,
}

/// Active channels of one op at one width key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    /// Active channels of each input.
    pub inputs: Vec<usize>,
    /// Active output channels.
    pub out: usize,
}

/// A runtime op with real-valued parameters.
#[derive(Debug, Clone)]
pub struct LOp {
    /// ONNX node name.
    pub name: String,
    /// ONNX op type.
    pub op_type: String,
    /// Runtime kind.
    pub kind: OpKind,
    /// Segment.
    pub segment: usize,
    /// Its segment's `in_segment` (the earlier stage whose width its parameters depend on).
    pub in_segment: Option<usize>,
    /// Input tensors.
    pub inputs: Vec<usize>,
    /// Output tensor.
    pub output: usize,
    /// Real weights in runtime layout.
    pub weights: Vec<f32>,
    /// Exact int8 weights (runtime layout) and per-output scales from the file.
    pub wq: Option<ConstQuant>,
    /// Weight shape.
    pub wshape: [usize; 4],
    /// Real bias, one per output channel (empty without weights).
    pub bias: Vec<f32>,
    /// Attributes.
    pub attrs: [u32; op_field::N_ATTRS],
    /// Fused activation.
    pub act: Act,
    /// The function of a [`OpKind::Lut`].
    pub unary: Option<Unary>,
    /// The fill value of a constant-mode [`OpKind::Pad`].
    pub pad_value: f32,
    /// Per-input factors of an [`OpKind::Add`] (empty: all 1).
    pub add_coefs: Vec<f32>,
    /// Per-width parameters of the op's segment widths.
    pub per_width: Option<Vec<Option<WidthParams>>>,
    /// Output channels never slimmed (listed in `fixed_channels`, or reaching a task output).
    pub fixed: bool,
    /// Channels per key (`key = w_in * n_widths(segment) + w_seg` with `w_in` the width of
    /// the segment's `in_segment`).
    pub channels: Vec<Channels>,
}

/// How the readers of a tensor key on its producer's widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossRead {
    /// Every reader keys on the producer's segment and `in_segment`: one quantization per key.
    Keyed,
    /// A reader keys on the producer's segment but not on its `in_segment` (the next encoder
    /// stage): one quantization per width of the producer's own segment.
    OwnWidth,
    /// A reader keys on neither (a skip connection into a decoder): one quantization.
    Fixed,
}

/// The lowered model.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// Name.
    pub name: String,
    /// The manifest (or the single-segment default).
    pub manifest: Manifest,
    /// Tensors.
    pub tensors: Vec<LTensor>,
    /// Ops in execution order.
    pub ops: Vec<LOp>,
    /// Input tensor.
    pub input: usize,
    /// Whether the input was a `[1, K]` vector (not an image).
    pub input_is_vector: bool,
    /// Tasks.
    pub tasks: Vec<LTask>,
    /// Whether the file stated quantization.
    pub prequantized: bool,
    /// Number of encoder stages (segments `0..n_encoder`).
    pub n_encoder: usize,
    /// Per segment, the one other segment whose width its ops key on.
    pub seg_in: Vec<Option<usize>>,
}

impl Lowered {
    /// Number of widths of segment `s`.
    pub fn n_widths(&self, s: usize) -> usize {
        self.manifest.segments[s].widths.len()
    }
    /// Largest number of widths of any decoder (1 without decoders).
    pub fn max_decoder_widths(&self) -> usize {
        (self.n_encoder..self.manifest.segments.len())
            .map(|s| self.n_widths(s))
            .max()
            .unwrap_or(1)
    }
    /// Number of encoder configurations: the product of the stages' width counts. An encoder
    /// configuration `we` holds stage `k`'s width index as its `k`-th mixed-radix digit
    /// (stage 0 least significant).
    pub fn n_encoder_configs(&self) -> usize {
        (0..self.n_encoder).map(|k| self.n_widths(k)).product()
    }
    /// Width index of segment `s` at grid point `(we, d)`: an encoder stage at its digit of
    /// `we`, every decoder at `min(d, its last)`.
    pub fn width_at(&self, s: usize, we: usize, d: usize) -> usize {
        if s < self.n_encoder {
            let below: usize = (0..s).map(|k| self.n_widths(k)).product();
            (we / below) % self.n_widths(s)
        } else {
            d.min(self.n_widths(s) - 1)
        }
    }
    /// Key of tensor/op of segment `s` at grid point `(we, d)`.
    pub fn key(&self, s: usize, we: usize, d: usize) -> usize {
        match self.seg_in[s] {
            Some(i) => self.width_at(i, we, d) * self.n_widths(s) + self.width_at(s, we, d),
            None => self.width_at(s, we, d),
        }
    }
    /// A grid point `(we, d)` with key `key` in segment `s`.
    pub fn point_of_key(&self, s: usize, key: usize) -> (usize, usize) {
        let n = self.n_widths(s);
        let (w_in, w) = (key / n, key % n);
        let mut digits = vec![0usize; self.n_encoder];
        let mut d = 0;
        if s < self.n_encoder {
            digits[s] = w;
        } else {
            d = w;
        }
        if let Some(i) = self.seg_in[s] {
            digits[i] = w_in;
        }
        let mut we = 0;
        for k in (0..self.n_encoder).rev() {
            we = we * self.n_widths(k) + digits[k];
        }
        (we, d)
    }
    /// How the readers of tensor `t` key on its producer's widths.
    pub fn cross_reads(&self, t: usize) -> CrossRead {
        let p = self.tensors[t].segment;
        let p_in = self.seg_in[p];
        let mut out = CrossRead::Keyed;
        for op in self.ops.iter().filter(|o| o.inputs.contains(&t)) {
            let keys = [Some(op.segment), op.in_segment];
            if !keys.contains(&Some(p)) {
                return CrossRead::Fixed;
            }
            if p_in.is_some() && !keys.contains(&p_in) {
                out = CrossRead::OwnWidth;
            }
        }
        out
    }
    /// Number of keys of segment `s`.
    pub fn n_keys(&self, s: usize) -> usize {
        self.n_widths(s) * self.seg_in[s].map_or(1, |i| self.n_widths(i))
    }
    /// `(we, d)` grid points covering every key.
    pub fn grid(&self) -> Vec<(usize, usize)> {
        let mut g = Vec::new();
        for we in 0..self.n_encoder_configs() {
            for d in 0..self.max_decoder_widths() {
                g.push((we, d));
            }
        }
        g
    }
    /// Encoder configurations to calibrate at: the covering set of
    /// [`edgeslim_runtime::width::encoder`], without repeats.
    pub fn calibration_encoder_configs(&self) -> Vec<usize> {
        let counts: Vec<usize> = (0..self.n_encoder).map(|k| self.n_widths(k)).collect();
        let mut out = Vec::new();
        for i in 0..encoder::cover_len(&counts) {
            let e = encoder::cover(&counts, i);
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }
}

fn nhwc(shape: &[usize]) -> Result<[usize; 3]> {
    Ok(match shape {
        [1, c, h, w] => [*h, *w, *c],
        [1, k] => [1, 1, *k],
        s => bail!("tensor shape {s:?} is neither [1, C, H, W] nor [1, K]"),
    })
}

/// The window attributes shared by Conv2d and ConvTranspose: strides, the leading pads,
/// dilations and groups.
fn window_attrs(
    attrs: &mut [u32; op_field::N_ATTRS],
    strides: [usize; 2],
    pads: [usize; 2],
    dilations: [usize; 2],
    groups: usize,
) {
    attrs[attr::STRIDE_H] = strides[0] as u32;
    attrs[attr::STRIDE_W] = strides[1] as u32;
    attrs[attr::PAD_TOP] = pads[0] as u32;
    attrs[attr::PAD_LEFT] = pads[1] as u32;
    attrs[attr::DIL_H] = dilations[0] as u32;
    attrs[attr::DIL_W] = dilations[1] as u32;
    attrs[attr::GROUPS] = groups as u32;
}

/// Run the pass.
pub fn run(g: &Graph) -> Result<Lowered> {
    let output_names: Vec<String> = g.outputs.iter().map(|o| o.0.clone()).collect();
    let manifest = match &g.manifest_json {
        Some(j) => Manifest::parse(j)?,
        None => Manifest::single(&output_names),
    };
    // Manifest against the graph: outputs and tasks.
    for (i, t) in manifest.tasks.iter().enumerate() {
        for o in &t.outputs {
            if !output_names.contains(o) {
                bail!("invalid edgeslim.manifest: tasks[{i}].outputs: {o} is not a graph output");
            }
        }
    }
    for o in &output_names {
        if !manifest.tasks.iter().any(|t| t.outputs.contains(o)) {
            bail!("invalid edgeslim.manifest: tasks: graph output {o} belongs to no task");
        }
    }
    let node_names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
    for (i, f) in manifest.fixed_channels.iter().enumerate() {
        match g.nodes.iter().find(|n| &n.name == f) {
            Some(n) if matches!(n.op, Op::Conv { .. } | Op::Gemm) => {}
            Some(_) => bail!(
                "invalid edgeslim.manifest: fixed_channels[{i}]: {f} is not a Conv/Gemm/MatMul"
            ),
            None => bail!("invalid edgeslim.manifest: fixed_channels[{i}]: no node named {f}"),
        }
    }
    for (i, p) in manifest.per_width.iter().enumerate() {
        match g.nodes.iter().find(|n| n.name == p.node) {
            Some(n) if matches!(n.op, Op::Conv { .. } | Op::Gemm) => {
                let s = manifest.segment_of(&n.name);
                if p.widths.len() != manifest.segments[s].widths.len() {
                    bail!(
                        "invalid edgeslim.manifest: per_width[{i}].widths: {} entries, segment {} has {} widths",
                        p.widths.len(),
                        manifest.segments[s].name,
                        manifest.segments[s].widths.len()
                    );
                }
            }
            _ => bail!(
                "invalid edgeslim.manifest: per_width[{i}].node: no Conv/Gemm/MatMul named {}",
                p.node
            ),
        }
    }
    let _ = node_names;

    // Tensors: the input and every live node's output.
    let mut tmap = vec![usize::MAX; g.tensors.len()];
    let mut tensors = Vec::new();
    let input_shape = &g.tensors[g.input].shape;
    tensors.push(LTensor {
        name: g.tensors[g.input].name.clone(),
        shape: nhwc(input_shape)?,
        segment: 0,
        quant: g.tensors[g.input].quant,
    });
    tmap[g.input] = 0;
    let live: Vec<&crate::ir::Node> = g.live().map(|(_, n)| n).collect();
    for n in &live {
        let t = &g.tensors[n.output];
        tmap[n.output] = tensors.len();
        tensors.push(LTensor {
            name: t.name.clone(),
            shape: nhwc(&t.shape)
                .map_err(|e| anyhow::anyhow!("node {} ({}): {e}", n.name, n.op_type))?,
            segment: manifest.segment_of(&n.name),
            quant: t.quant,
        });
    }
    // Tasks.
    let mut tasks = Vec::new();
    for (i, t) in manifest.tasks.iter().enumerate() {
        let seg = manifest.segment_index(&t.segment).unwrap_or(0);
        let mut outs = Vec::new();
        for o in &t.outputs {
            let gt = g
                .outputs
                .iter()
                .find(|x| &x.0 == o)
                .map(|x| x.1)
                .unwrap_or(0);
            let lt = tmap[gt];
            if lt == usize::MAX || lt == 0 {
                bail!("graph output {o} is not computed by any node");
            }
            if tensors[lt].segment != seg {
                bail!(
                    "invalid edgeslim.manifest: tasks[{i}].segment: output {o} is computed in segment {}, not {}",
                    manifest.segments[tensors[lt].segment].name,
                    t.segment
                );
            }
            outs.push((o.clone(), lt));
        }
        tasks.push(LTask {
            name: t.name.clone(),
            segment: seg,
            outputs: outs,
        });
    }
    // Layers whose output channels reach a task output are fixed.
    let mut full_needed = vec![false; g.tensors.len()];
    for o in &g.outputs {
        full_needed[o.1] = true;
    }
    for n in live.iter().rev() {
        if full_needed[n.output] && !matches!(n.op, Op::Conv { group: 1, .. } | Op::Gemm) {
            for &i in &n.inputs {
                if g.tensors[i].konst.is_none() {
                    full_needed[i] = true;
                }
            }
        }
    }
    let single = g.manifest_json.is_none();
    let n_encoder = manifest.n_encoder();
    let mut ops: Vec<LOp> = Vec::new();
    for n in &live {
        let segment = manifest.segment_of(&n.name);
        let acts: Vec<usize> = n
            .inputs
            .iter()
            .filter(|&&t| g.tensors[t].konst.is_none())
            .map(|&t| tmap[t])
            .collect();
        if acts.contains(&usize::MAX) {
            bail!("node {} ({}): input computed by no node", n.name, n.op_type);
        }
        for &t in &acts {
            let s = tensors[t].segment;
            if s >= n_encoder && s != segment {
                bail!(
                    "invalid edgeslim.manifest: segments: node {} (segment {}) reads tensor {} of segment {}; a decoder reads only encoder tensors and its own",
                    n.name,
                    manifest.segments[segment].name,
                    tensors[t].name,
                    manifest.segments[s].name
                );
            }
        }
        let output = tmap[n.output];
        let ctx = |e: String| anyhow::anyhow!("node {} ({}): {e}", n.name, n.op_type);
        let mut attrs = [0u32; op_field::N_ATTRS];
        let mut weights = Vec::new();
        let mut wq = None;
        let mut wshape = [0usize; 4];
        let mut bias = Vec::new();
        let mut unary = None;
        let mut pad_value = 0.0;
        let mut add_coefs = Vec::new();
        let kind = match &n.op {
            Op::Conv {
                strides,
                pads,
                dilations,
                group,
            } => {
                let c = g
                    .konst(n.inputs[1])
                    .ok_or_else(|| ctx("weights not constant".into()))?;
                let ws = &g.tensors[n.inputs[1]].shape;
                let [o, ipg, kh, kw] = [ws[0], ws[1], ws[2], ws[3]];
                wshape = [o, kh, kw, ipg];
                weights = vec![0f32; c.data.len()];
                let mut q8 = c.quant.as_ref().map(|_| vec![0i8; c.data.len()]);
                for oo in 0..o {
                    for i in 0..ipg {
                        for y in 0..kh {
                            for x in 0..kw {
                                let src = ((oo * ipg + i) * kh + y) * kw + x;
                                let dst = ((oo * kh + y) * kw + x) * ipg + i;
                                weights[dst] = c.data[src];
                                if let (Some(d), Some(q)) = (q8.as_mut(), c.quant.as_ref()) {
                                    d[dst] = q.values[src];
                                }
                            }
                        }
                    }
                }
                wq = q8.zip(c.quant.as_ref()).map(|(values, q)| ConstQuant {
                    values,
                    scales: q.scales.clone(),
                });
                bias = n
                    .inputs
                    .get(2)
                    .and_then(|&b| g.konst(b))
                    .map_or(vec![0.0; o], |b| b.data.clone());
                let c_in = tensors[acts[0]].shape[2];
                window_attrs(&mut attrs, *strides, [pads[0], pads[1]], *dilations, *group);
                attrs[attr::DEPTHWISE] = (*group > 1 && *group == c_in) as u32;
                OpKind::Conv2d
            }
            Op::Gemm => {
                let c = g
                    .konst(n.inputs[1])
                    .ok_or_else(|| ctx("weights not constant".into()))?;
                let [h, w, ch] = tensors[acts[0]].shape;
                let p = n.positions;
                if h * w != p {
                    return Err(ctx(format!("reads {h}x{w} positions, expected {p}")));
                }
                let o = g.tensors[n.inputs[1]].shape[0];
                let k = ch * p;
                // ONNX feature index of an NCHW flatten is c * P + p; runtime order [p][c].
                weights = vec![0f32; o * k];
                let mut q8 = c.quant.as_ref().map(|_| vec![0i8; o * k]);
                for oo in 0..o {
                    for pp in 0..p {
                        for cc in 0..ch {
                            let src = oo * k + cc * p + pp;
                            let dst = (oo * p + pp) * ch + cc;
                            weights[dst] = c.data[src];
                            if let (Some(d), Some(q)) = (q8.as_mut(), c.quant.as_ref()) {
                                d[dst] = q.values[src];
                            }
                        }
                    }
                }
                wq = q8.zip(c.quant.as_ref()).map(|(values, q)| ConstQuant {
                    values,
                    scales: q.scales.clone(),
                });
                wshape = [o, p, ch, 1];
                bias = n
                    .inputs
                    .get(2)
                    .and_then(|&b| g.konst(b))
                    .map_or(vec![0.0; o], |b| b.data.clone());
                OpKind::FullyConnected
            }
            Op::Add => OpKind::Add,
            Op::Sum(c) => {
                add_coefs = c.clone();
                OpKind::Add
            }
            Op::MaxPool {
                kernel,
                strides,
                pads,
            }
            | Op::AvgPool {
                kernel,
                strides,
                pads,
                ..
            } => {
                attrs[attr::KERNEL_H] = kernel[0] as u32;
                attrs[attr::KERNEL_W] = kernel[1] as u32;
                attrs[attr::STRIDE_H] = strides[0] as u32;
                attrs[attr::STRIDE_W] = strides[1] as u32;
                attrs[attr::PAD_TOP] = pads[0] as u32;
                attrs[attr::PAD_LEFT] = pads[1] as u32;
                if let Op::AvgPool {
                    count_include_pad, ..
                } = n.op
                {
                    attrs[attr::COUNT_INCLUDE_PAD] = count_include_pad as u32;
                    OpKind::AvgPool
                } else {
                    OpKind::MaxPool
                }
            }
            Op::GlobalAvgPool => OpKind::GlobalAvgPool,
            Op::Concat => OpKind::Concat,
            Op::Softmax => OpKind::Softmax,
            Op::Unary(u) => {
                unary = Some(*u);
                OpKind::Lut
            }
            Op::Mul => OpKind::Mul,
            Op::MinMax { min } => {
                attrs[edgeslim_runtime::ops::minmax::attr::MODE] = *min as u32;
                OpKind::MinMax
            }
            Op::GatherChannels { start, step } => {
                attrs[edgeslim_runtime::ops::gather::attr::START] = *start as u32;
                attrs[edgeslim_runtime::ops::gather::attr::STEP] = *step as u32;
                OpKind::GatherChannels
            }
            Op::ConvTranspose {
                strides,
                pads,
                dilations,
                group,
            } => {
                let c = g
                    .konst(n.inputs[1])
                    .ok_or_else(|| ctx("weights not constant".into()))?;
                let ws = &g.tensors[n.inputs[1]].shape;
                let [ci, opg, kh, kw] = [ws[0], ws[1], ws[2], ws[3]];
                let ipg = ci / group;
                let o = opg * group;
                // ONNX [I, O / g, KH, KW] -> the runtime's [O, KH, KW, I / g]. The file's int8
                // form (per input row) does not carry over: the compiler quantizes per output
                // row, which reproduces a symmetric per-output-channel quantization exactly.
                weights = vec![0f32; c.data.len()];
                for i in 0..ci {
                    let (grp, ii) = (i / ipg, i % ipg);
                    for j in 0..opg {
                        for y in 0..kh {
                            for x in 0..kw {
                                let src = ((i * opg + j) * kh + y) * kw + x;
                                let dst = (((grp * opg + j) * kh + y) * kw + x) * ipg + ii;
                                weights[dst] = c.data[src];
                            }
                        }
                    }
                }
                wshape = [o, kh, kw, ipg];
                bias = n
                    .inputs
                    .get(2)
                    .and_then(|&b| g.konst(b))
                    .map_or(vec![0.0; o], |b| b.data.clone());
                window_attrs(&mut attrs, *strides, *pads, *dilations, *group);
                OpKind::ConvTranspose
            }
            Op::Transpose { perm } => {
                // ONNX axis 1 (C), 2 (H), 3 (W) are stored as axis 2, 0, 1; stored output axis
                // k (h, w, c) is ONNX output axis 2, 3, 1, which takes ONNX input axis perm[.].
                let stored = |a: usize| [usize::MAX, 2, 0, 1][a];
                for (k, a) in [2, 3, 1].into_iter().enumerate() {
                    attrs[edgeslim_runtime::ops::transpose::attr::PERM + k] =
                        stored(perm[a]) as u32;
                }
                OpKind::Transpose
            }
            Op::Resize(r) => {
                use edgeslim_runtime::ops::resize::attr as ra;
                attrs[ra::MODE] = r.linear as u32;
                attrs[ra::COORD] = r.coord;
                attrs[ra::NEAREST] = r.nearest;
                attrs[ra::H_NUM] = r.scale[0][0];
                attrs[ra::H_DEN] = r.scale[0][1];
                attrs[ra::W_NUM] = r.scale[1][0];
                attrs[ra::W_DEN] = r.scale[1][1];
                OpKind::Resize
            }
            Op::Pad { pads, mode, value } => {
                attrs[attr::PAD_TOP] = pads[0] as u32;
                attrs[attr::PAD_LEFT] = pads[1] as u32;
                attrs[edgeslim_runtime::ops::pad::attr::MODE] = *mode;
                pad_value = *value;
                OpKind::Pad
            }
            Op::PRelu => {
                let c = tensors[acts[0]].shape[2];
                let slope = n
                    .inputs
                    .get(1)
                    .and_then(|&t| g.konst(t))
                    .ok_or_else(|| ctx("the slope is not a constant".into()))?;
                weights = match slope.data.len() {
                    1 => vec![slope.data[0]; c],
                    k if k == c => slope.data.clone(),
                    k => return Err(ctx(format!("{k} slopes for {c} channels"))),
                };
                wshape = [c, 1, 1, 1];
                bias = vec![0.0; c];
                OpKind::PRelu
            }
            other => return Err(ctx(format!("{other:?} left after the graph passes"))),
        };
        if n.act != Act::None && kind == OpKind::Softmax {
            return Err(ctx("an activation after Softmax is not supported".into()));
        }
        let per_width = manifest
            .per_width
            .iter()
            .find(|p| p.node == n.name)
            .map(|p| p.widths.clone());
        ops.push(LOp {
            name: n.name.clone(),
            op_type: n.op_type.clone(),
            kind,
            segment,
            in_segment: None,
            inputs: acts,
            output,
            weights,
            wq,
            wshape,
            bias,
            attrs,
            act: n.act,
            unary,
            pad_value,
            add_coefs,
            per_width,
            fixed: manifest.fixed_channels.contains(&n.name) || full_needed[n.output],
            channels: Vec::new(),
        });
    }
    let mut l = Lowered {
        name: g.name.clone(),
        manifest,
        tensors,
        ops,
        input: 0,
        input_is_vector: g.tensors[g.input].shape.len() == 2,
        tasks,
        prequantized: g.prequantized,
        n_encoder,
        seg_in: Vec::new(),
    };
    l.seg_in = segment_inputs(&l, single)?;
    for op in &mut l.ops {
        op.in_segment = l.seg_in[op.segment];
    }
    resolve_channels(&mut l)?;
    Ok(l)
}

/// Each segment's `in_segment`: stage `k > 0` keys on stage `k - 1` (its first layer reads that
/// stage's active channels); a decoder on the latest stage it reads (normally the last one);
/// the first stage, and the single segment of a model without manifest, on none.
fn segment_inputs(l: &Lowered, single: bool) -> Result<Vec<Option<usize>>> {
    let n = l.manifest.segments.len();
    let mut seg_in = vec![None; n];
    if single {
        return Ok(seg_in);
    }
    for (s, v) in seg_in.iter_mut().enumerate().skip(1) {
        if s < l.n_encoder {
            *v = Some(s - 1);
        } else {
            let read = l
                .ops
                .iter()
                .filter(|o| o.segment == s)
                .flat_map(|o| o.inputs.iter())
                .map(|&t| l.tensors[t].segment)
                .filter(|&t| t < l.n_encoder)
                .max();
            *v = Some(read.unwrap_or(l.n_encoder - 1));
        }
    }
    Ok(seg_in)
}

/// Active channels of every op at every key, with the slimming rules checked.
fn resolve_channels(l: &mut Lowered) -> Result<()> {
    let n_keys: Vec<usize> = l.ops.iter().map(|o| l.n_keys(o.segment)).collect();
    for (i, op) in l.ops.iter_mut().enumerate() {
        op.channels = vec![
            Channels {
                inputs: vec![],
                out: 0
            };
            n_keys[i]
        ];
    }
    let mut always_full = vec![true; l.tensors.len()];
    for (we, d) in l.grid() {
        let mut act: Vec<usize> = l.tensors.iter().map(|t| t.shape[2]).collect();
        for i in 0..l.ops.len() {
            let op = &l.ops[i];
            let s = op.segment;
            let m = l.manifest.segments[s].widths[l.width_at(s, we, d)];
            let full = l.tensors[op.output].shape[2];
            let ins: Vec<usize> = op.inputs.iter().map(|&t| act[t]).collect();
            let slim = l.n_widths(s) > 1 && !op.fixed;
            let err = |e: String| anyhow::anyhow!("node {} ({}): {e}", op.name, op.op_type);
            let out = match op.kind {
                OpKind::Conv2d => {
                    let c_in = l.tensors[op.inputs[0]].shape[2];
                    let groups = op.attrs[attr::GROUPS] as usize;
                    if op.attrs[attr::DEPTHWISE] == 1 {
                        ins[0] * (full / c_in)
                    } else if groups > 1 {
                        if ins[0] != c_in {
                            return Err(err(format!(
                                "a grouped convolution ({groups} groups) cannot read a slimmed input ({} of {c_in} channels)",
                                ins[0]
                            )));
                        }
                        full
                    } else if slim {
                        l.manifest.channel_rule.active(m, full)
                    } else {
                        full
                    }
                }
                OpKind::ConvTranspose | OpKind::Transpose | OpKind::GatherChannels => {
                    let c_in = l.tensors[op.inputs[0]].shape[2];
                    let groups = op.attrs[attr::GROUPS] as usize;
                    let whole = op.kind != OpKind::ConvTranspose || groups > 1;
                    if whole && ins[0] != c_in {
                        return Err(err(format!(
                            "cannot read a slimmed input ({} of {c_in} channels): make its producer fixed",
                            ins[0]
                        )));
                    }
                    if slim && !whole {
                        l.manifest.channel_rule.active(m, full)
                    } else {
                        full
                    }
                }
                OpKind::FullyConnected => {
                    if slim {
                        l.manifest.channel_rule.active(m, full)
                    } else {
                        full
                    }
                }
                OpKind::Add | OpKind::Mul | OpKind::MinMax => {
                    if let Some(k) = ins.iter().position(|&c| c != ins[0]) {
                        return Err(err(format!(
                            "invalid edgeslim.manifest: {} inputs have {} and {} active channels at widths (encoder {}, decoder {}); both must be equal",
                            op.op_type, ins[0], ins[k], we, d
                        )));
                    }
                    ins[0]
                }
                OpKind::Concat => {
                    for (k, &t) in op.inputs.iter().enumerate().take(op.inputs.len() - 1) {
                        if ins[k] != l.tensors[t].shape[2] {
                            return Err(err(format!(
                                "invalid edgeslim.manifest: Concat input {} is slimmed; every input but the last must be fixed",
                                l.tensors[t].name
                            )));
                        }
                    }
                    ins.iter().sum()
                }
                _ => ins[0],
            };
            if out != full {
                always_full[op.output] = false;
            }
            if let Some(pw) = &op.per_width
                && let Some(Some(p)) = pw.get(l.width_at(s, we, d))
                && (p.channel_scale.len() != out || p.bias.len() != out)
            {
                return Err(anyhow::anyhow!(
                    "invalid edgeslim.manifest: per_width (node {}) at width {m}: channel_scale/bias need {out} entries, have {}/{}",
                    op.name,
                    p.channel_scale.len(),
                    p.bias.len()
                ));
            }
            act[op.output] = out;
            let key = l.key(s, we, d);
            let ch = Channels { inputs: ins, out };
            let prev = &l.ops[i].channels[key];
            if !prev.inputs.is_empty() && *prev != ch {
                let keyed = match l.seg_in[s] {
                    Some(k) => format!(
                        "{} and {}",
                        l.manifest.segments[s].name, l.manifest.segments[k].name
                    ),
                    None => l.manifest.segments[s].name.clone(),
                };
                return Err(err(format!(
                    "its active channels ({:?} in, {} out, and {:?} in, {} out at the same widths of {keyed}) depend on the width of another segment: an op may depend on the widths of its own segment and one encoder stage only (docs/manifest.md, \"Encoder stages\"): make the tensor it reads from an earlier stage fixed-width (fixed_channels)",
                    prev.inputs, prev.out, ch.inputs, ch.out
                )));
            }
            l.ops[i].channels[key] = ch;
        }
    }
    let _ = always_full;
    Ok(())
}
