//! A small hand-built two-task slimmable model, for documentation, tests and fuzzing seeds.
//!
//! [`Builder`] assembles a [`ModelDef`] op by op with deterministic pseudo-random int8 weights
//! and quantization parameters that are consistent across producers and consumers at every
//! width (each consumer's input zero point and scale are its producer's at that width).

use super::{ChannelDef, EntryDef, ModelDef, OpDef, OutputDef, SegmentDef, TaskDef, TensorDef};
use crate::format::{OpKind, attr, op_field};
use crate::quant::host::{add_params_n, quantize_multiplier, softmax_params};

/// xorshift64*: deterministic, dependency-free.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Active channels of a layer with `c` channels at multiplier `m`: `ceil(m * c)`, at least 1.
pub fn active(m: f32, c: usize) -> usize {
    ((m as f64 * c as f64 - 1e-6).ceil() as usize).clamp(1, c)
}

/// Builds a [`ModelDef`] op by op.
#[derive(Debug, Clone)]
pub struct Builder {
    /// The model so far.
    pub def: ModelDef,
    rng: Rng,
}

/// Output-stage choice of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No clamp.
    None,
    /// ReLU.
    Relu,
}

impl Builder {
    /// A model with `segments` (`(name, widths)`, encoder first) and an input of `shape`.
    pub fn new(name: &str, segments: &[(&str, &[f32])], shape: [usize; 3], seed: u64) -> Self {
        let mut rng = Rng(seed | 1);
        let input_scale = rng.uniform(0.005, 0.02) as f32;
        let input_zero_point = rng.range(-10, 10);
        Builder {
            def: ModelDef {
                name: name.into(),
                segments: segments
                    .iter()
                    .enumerate()
                    .map(|(i, (n, w))| SegmentDef {
                        name: (*n).into(),
                        widths: w.to_vec(),
                        in_segment: (i > 0).then_some(0),
                    })
                    .collect(),
                encoder_segments: 1,
                tasks: Vec::new(),
                tensors: vec![TensorDef {
                    name: "input".into(),
                    shape,
                    segment: 0,
                }],
                ops: Vec::new(),
                input: 0,
                input_scale,
                input_zero_point,
            },
            rng,
        }
    }

    fn nw(&self, s: usize) -> usize {
        self.def.segments[s].widths.len()
    }

    /// `(encoder width, own width)` of every key of an op, in key order.
    fn keys(&self, seg: usize, in_seg: Option<usize>) -> Vec<(usize, usize)> {
        let nw = self.nw(seg);
        match (seg, in_seg) {
            (0, _) => (0..nw).map(|w| (w, w)).collect(),
            (_, Some(e)) => (0..self.nw(e))
                .flat_map(|we| (0..nw).map(move |ws| (we, ws)))
                .collect(),
            (_, None) => (0..nw).map(|w| (0, w)).collect(),
        }
    }

    /// `(channels, scale, zero_point)` of tensor `t` at encoder width `we`, own width `ws`.
    pub fn quant_of(&self, t: usize, we: usize, ws: usize) -> (usize, f32, i32) {
        match self.def.ops.iter().find(|o| o.output == t) {
            None => (
                self.def.tensors[t].shape[2],
                self.def.input_scale,
                self.def.input_zero_point,
            ),
            Some(p) => {
                let key = if p.segment == 0 {
                    we
                } else if p.in_segment.is_some() {
                    we * self.nw(p.segment) + ws
                } else {
                    ws
                };
                let e = &p.entries[key];
                (e.out_ch, e.out_scale, e.out_zp)
            }
        }
    }

    /// The entry of an op that copies or combines `x`'s values with one rescale to a random
    /// output quantization: `out_ch` (default: `x`'s active channels), `extra` words first,
    /// then the multiplier and shift of `s_x / (s_out * div)`.
    fn rescaled_entry(
        &mut self,
        x: usize,
        (we, ws): (usize, usize),
        div: f64,
        out_ch: Option<usize>,
        extra: &[i32],
    ) -> EntryDef {
        let (ch, s_in, in_zp) = self.quant_of(x, we, ws);
        let (s_out, out_zp) = self.out_q();
        let (m, sh) = quantize_multiplier(s_in as f64 / (s_out as f64 * div));
        let mut words = extra.to_vec();
        words.extend_from_slice(&[m, sh]);
        EntryDef {
            in_ch: ch,
            out_ch: out_ch.unwrap_or(ch),
            in_zp,
            out_zp,
            out_scale: s_out,
            act: (-128, 127),
            extra: words,
            channels: vec![],
        }
    }

    fn tensor(&mut self, shape: [usize; 3], seg: usize) -> usize {
        let i = self.def.tensors.len();
        self.def.tensors.push(TensorDef {
            name: format!("t{i}"),
            shape,
            segment: seg,
        });
        i
    }

    fn out_q(&mut self) -> (f32, i32) {
        (self.rng.uniform(0.02, 0.08) as f32, self.rng.range(-20, 20))
    }

    fn act_range(act: Act, zp: i32) -> (i8, i8) {
        match act {
            Act::None => (-128, 127),
            Act::Relu => (zp.clamp(-128, 127) as i8, 127),
        }
    }

    fn channels(&mut self, n: usize, fan_in: usize, s_in: f32, s_out: f32) -> Vec<ChannelDef> {
        (0..n)
            .map(|_| {
                // Weight scale chosen so that outputs spread over the int8 range.
                let s_w = 1.0 / (fan_in as f64).sqrt() / 45.0 * s_out as f64 / s_in as f64
                    * self.rng.uniform(0.7, 1.3);
                let (multiplier, shift) = quantize_multiplier(s_in as f64 * s_w / s_out as f64);
                ChannelDef {
                    bias: self.rng.range(-300, 300),
                    multiplier,
                    shift,
                }
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: OpKind,
        seg: usize,
        in_seg: Option<usize>,
        inputs: Vec<usize>,
        out_shape: [usize; 3],
        weights: Vec<i8>,
        wshape: [usize; 4],
        attrs: [u32; op_field::N_ATTRS],
        entry: &mut dyn FnMut(&mut Self, usize, usize) -> EntryDef,
    ) -> usize {
        let out = self.tensor(out_shape, seg);
        let entries = self
            .keys(seg, in_seg)
            .into_iter()
            .map(|(we, ws)| entry(self, we, ws))
            .collect();
        self.def.ops.push(OpDef {
            kind,
            segment: seg,
            in_segment: in_seg,
            inputs,
            output: out,
            weights,
            wshape,
            attrs,
            entries,
        });
        out
    }

    fn random_weights(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.rng.range(-127, 127) as i8).collect()
    }

    /// A convolution. `slim`: output channels follow the segment's width; depthwise convs
    /// follow their input.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        pad: usize,
        depthwise: bool,
        slim: bool,
        act: Act,
    ) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        let oh = (h + 2 * pad - k) / stride + 1;
        let ow = (w + 2 * pad - k) / stride + 1;
        let i_full = if depthwise { 1 } else { c };
        let weights = self.random_weights(out_c * k * k * i_full);
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[attr::STRIDE_H] = stride as u32;
        attrs[attr::STRIDE_W] = stride as u32;
        attrs[attr::PAD_TOP] = pad as u32;
        attrs[attr::PAD_LEFT] = pad as u32;
        attrs[attr::DIL_H] = 1;
        attrs[attr::DIL_W] = 1;
        attrs[attr::GROUPS] = if depthwise { c as u32 } else { 1 };
        attrs[attr::DEPTHWISE] = depthwise as u32;
        let widths = self.def.segments[seg].widths.clone();
        self.push(
            OpKind::Conv2d,
            seg,
            in_seg,
            vec![x],
            [oh, ow, out_c],
            weights,
            [out_c, k, k, i_full],
            attrs,
            &mut |b, we, ws| {
                let (in_ch, s_in, in_zp) = b.quant_of(x, we, ws);
                let out_ch = if depthwise {
                    in_ch * (out_c / c)
                } else if slim {
                    active(widths[ws], out_c)
                } else {
                    out_c
                };
                let (s_out, out_zp) = b.out_q();
                let fan = k * k * if depthwise { 1 } else { in_ch };
                EntryDef {
                    in_ch,
                    out_ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: Self::act_range(act, out_zp),
                    extra: vec![],
                    channels: b.channels(out_ch, fan, s_in, s_out),
                }
            },
        )
    }

    /// A fully connected layer over all positions of `x`.
    pub fn fc(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        out_c: usize,
        slim: bool,
    ) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        let weights = self.random_weights(out_c * h * w * c);
        let widths = self.def.segments[seg].widths.clone();
        self.push(
            OpKind::FullyConnected,
            seg,
            in_seg,
            vec![x],
            [1, 1, out_c],
            weights,
            [out_c, h * w, c, 1],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (in_ch, s_in, in_zp) = b.quant_of(x, we, ws);
                let out_ch = if slim {
                    active(widths[ws], out_c)
                } else {
                    out_c
                };
                let (s_out, out_zp) = b.out_q();
                EntryDef {
                    in_ch,
                    out_ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra: vec![],
                    channels: b.channels(out_ch, h * w * in_ch, s_in, s_out),
                }
            },
        )
    }

    /// Element-wise add of two or more (up to `MAX_ADD_INPUTS`) tensors of equal shape.
    pub fn add(&mut self, seg: usize, in_seg: Option<usize>, inputs: &[usize], act: Act) -> usize {
        let shape = self.def.tensors[inputs[0]].shape;
        let ins = inputs.to_vec();
        self.push(
            OpKind::Add,
            seg,
            in_seg,
            inputs.to_vec(),
            shape,
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let qs: Vec<(usize, f32, i32)> =
                    ins.iter().map(|&t| b.quant_of(t, we, ws)).collect();
                let (s_out, out_zp) = b.out_q();
                let scales: Vec<f64> = qs.iter().map(|q| q.1 as f64).collect();
                let (m, (mo, sho), ls) = add_params_n(&scales, s_out as f64);
                let mut extra = vec![qs[1].2, m[0].0, m[0].1, m[1].0, m[1].1, mo, sho, ls];
                for (q, mk) in qs.iter().zip(&m).skip(2) {
                    extra.extend_from_slice(&[q.2, mk.0, mk.1]);
                }
                EntryDef {
                    in_ch: qs[0].0,
                    out_ch: qs[0].0,
                    in_zp: qs[0].2,
                    out_zp,
                    out_scale: s_out,
                    act: Self::act_range(act, out_zp),
                    extra,
                    channels: vec![],
                }
            },
        )
    }

    /// An element-wise table op: a random table per width entry.
    pub fn lut(&mut self, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
        let shape = self.def.tensors[x].shape;
        self.push(
            OpKind::Lut,
            seg,
            in_seg,
            vec![x],
            shape,
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (ch, _, in_zp) = b.quant_of(x, we, ws);
                let (s_out, out_zp) = b.out_q();
                let extra = (0..crate::ops::lut::word::COUNT)
                    .map(|_| b.rng.next_u64() as i32)
                    .collect();
                EntryDef {
                    in_ch: ch,
                    out_ch: ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra,
                    channels: vec![],
                }
            },
        )
    }

    /// Element-wise product of `x` and `y` (`y` of `x`'s shape, or `[1, 1, C]`).
    pub fn mul(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        y: usize,
        act: Act,
    ) -> usize {
        let shape = self.def.tensors[x].shape;
        self.push(
            OpKind::Mul,
            seg,
            in_seg,
            vec![x, y],
            shape,
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (ch, s_x, in_zp) = b.quant_of(x, we, ws);
                let (_, s_y, y_zp) = b.quant_of(y, we, ws);
                let (s_out, out_zp) = b.out_q();
                // The product of two int8 offsets reaches 2^16: scale it back to int8 range.
                let (m, sh) = quantize_multiplier(s_x as f64 * s_y as f64 / s_out as f64 * 0.01);
                EntryDef {
                    in_ch: ch,
                    out_ch: ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: Self::act_range(act, out_zp),
                    extra: vec![y_zp, m, sh],
                    channels: vec![],
                }
            },
        )
    }

    /// Element-wise maximum (or with `min`, minimum) of two tensors of one shape.
    pub fn minmax(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        y: usize,
        min: bool,
    ) -> usize {
        let shape = self.def.tensors[x].shape;
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[crate::ops::minmax::attr::MODE] = min as u32;
        self.push(
            OpKind::MinMax,
            seg,
            in_seg,
            vec![x, y],
            shape,
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| {
                let (ch, s_x, in_zp) = b.quant_of(x, we, ws);
                let (_, s_y, y_zp) = b.quant_of(y, we, ws);
                let (s_out, out_zp) = b.out_q();
                let (m1, s1) = quantize_multiplier(s_x as f64 / s_out as f64);
                let (m2, s2) = quantize_multiplier(s_y as f64 / s_out as f64);
                EntryDef {
                    in_ch: ch,
                    out_ch: ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra: vec![y_zp, m1, s1, m2, s2],
                    channels: vec![],
                }
            },
        )
    }

    /// PRelu with random per-channel slopes.
    pub fn prelu(&mut self, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
        let shape = self.def.tensors[x].shape;
        let c = shape[2];
        let weights = self.random_weights(c);
        self.push(
            OpKind::PRelu,
            seg,
            in_seg,
            vec![x],
            shape,
            weights,
            [c, 1, 1, 1],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (ch, s_in, in_zp) = b.quant_of(x, we, ws);
                let (s_out, out_zp) = b.out_q();
                let (m, sh) = quantize_multiplier(s_in as f64 / s_out as f64);
                let mut channels = b.channels(ch, 1, s_in, s_out);
                for q in channels.iter_mut() {
                    q.bias = 0;
                }
                EntryDef {
                    in_ch: ch,
                    out_ch: ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra: vec![m, sh],
                    channels,
                }
            },
        )
    }

    /// Spatial padding (`mode` 0 constant, 1 reflect, 2 edge) by `[top, left, bottom, right]`.
    pub fn pad(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        pads: [usize; 4],
        mode: u32,
    ) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[attr::PAD_TOP] = pads[0] as u32;
        attrs[attr::PAD_LEFT] = pads[1] as u32;
        attrs[crate::ops::pad::attr::MODE] = mode;
        self.push(
            OpKind::Pad,
            seg,
            in_seg,
            vec![x],
            [h + pads[0] + pads[2], w + pads[1] + pads[3], c],
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| {
                let value = b.rng.range(-128, 127);
                b.rescaled_entry(x, (we, ws), 1.0, None, &[value])
            },
        )
    }

    /// Resize to `[oh, ow]` (`linear` or nearest with rule `nearest`, coordinate mode
    /// `coord`), the scale the exact fraction `out / in` per axis.
    #[allow(clippy::too_many_arguments)]
    pub fn resize(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        [oh, ow]: [usize; 2],
        linear: bool,
        coord: u32,
        nearest: u32,
    ) -> usize {
        use crate::ops::resize::attr as ra;
        let [h, w, c] = self.def.tensors[x].shape;
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[ra::MODE] = linear as u32;
        attrs[ra::COORD] = coord;
        attrs[ra::NEAREST] = nearest;
        attrs[ra::H_NUM] = oh as u32;
        attrs[ra::H_DEN] = h as u32;
        attrs[ra::W_NUM] = ow as u32;
        attrs[ra::W_DEN] = w as u32;
        self.push(
            OpKind::Resize,
            seg,
            in_seg,
            vec![x],
            [oh, ow, c],
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| {
                let div = if linear { (1u64 << 20) as f64 } else { 1.0 };
                b.rescaled_entry(x, (we, ws), div, None, &[])
            },
        )
    }

    /// A transposed convolution (`k x k`, `stride`, leading `pad` cropped, `extra` output
    /// rows and columns beyond the last full tap, at most `stride - 1`).
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        pad: usize,
        extra: usize,
        slim: bool,
    ) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        let full = |n: usize| (n - 1) * stride + k + extra;
        let (oh, ow) = (full(h) - 2 * pad, full(w) - 2 * pad);
        let weights = self.random_weights(out_c * k * k * c);
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[attr::STRIDE_H] = stride as u32;
        attrs[attr::STRIDE_W] = stride as u32;
        attrs[attr::PAD_TOP] = pad as u32;
        attrs[attr::PAD_LEFT] = pad as u32;
        attrs[attr::DIL_H] = 1;
        attrs[attr::DIL_W] = 1;
        attrs[attr::GROUPS] = 1;
        let widths = self.def.segments[seg].widths.clone();
        self.push(
            OpKind::ConvTranspose,
            seg,
            in_seg,
            vec![x],
            [oh, ow, out_c],
            weights,
            [out_c, k, k, c],
            attrs,
            &mut |b, we, ws| {
                let (in_ch, s_in, in_zp) = b.quant_of(x, we, ws);
                let out_ch = if slim {
                    active(widths[ws], out_c)
                } else {
                    out_c
                };
                let (s_out, out_zp) = b.out_q();
                // Each output meets at most ceil(k / stride)^2 taps of each input channel.
                let taps = k.div_ceil(stride).pow(2);
                EntryDef {
                    in_ch,
                    out_ch,
                    in_zp,
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra: vec![],
                    channels: b.channels(out_ch, taps * in_ch, s_in, s_out),
                }
            },
        )
    }

    /// Channels `start + j * step` for `j < count` (its input must not be slimmed).
    pub fn gather(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        start: usize,
        step: usize,
        count: usize,
    ) -> usize {
        let [h, w, _] = self.def.tensors[x].shape;
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[crate::ops::gather::attr::START] = start as u32;
        attrs[crate::ops::gather::attr::STEP] = step as u32;
        self.push(
            OpKind::GatherChannels,
            seg,
            in_seg,
            vec![x],
            [h, w, count],
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| b.rescaled_entry(x, (we, ws), 1.0, Some(count), &[]),
        )
    }

    /// A permutation of the stored axes (its input must not be slimmed).
    pub fn transpose(
        &mut self,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        perm: [usize; 3],
    ) -> usize {
        let dims = self.def.tensors[x].shape;
        let mut attrs = [0u32; op_field::N_ATTRS];
        for (k, &p) in perm.iter().enumerate() {
            attrs[crate::ops::transpose::attr::PERM + k] = p as u32;
        }
        let out = [dims[perm[0]], dims[perm[1]], dims[perm[2]]];
        self.push(
            OpKind::Transpose,
            seg,
            in_seg,
            vec![x],
            out,
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| {
                let (ch, s, zp) = b.quant_of(x, we, ws);
                EntryDef {
                    in_ch: ch,
                    out_ch: out[2],
                    in_zp: zp,
                    out_zp: zp,
                    out_scale: s,
                    act: (-128, 127),
                    extra: vec![],
                    channels: vec![],
                }
            },
        )
    }

    /// Max or average pooling with a square window.
    #[allow(clippy::too_many_arguments)]
    pub fn pool(
        &mut self,
        kind: OpKind,
        seg: usize,
        in_seg: Option<usize>,
        x: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        let (oh, ow) = if kind == OpKind::GlobalAvgPool {
            (1, 1)
        } else {
            (
                (h + 2 * pad - k) / stride + 1,
                (w + 2 * pad - k) / stride + 1,
            )
        };
        let mut attrs = [0u32; op_field::N_ATTRS];
        attrs[attr::KERNEL_H] = k as u32;
        attrs[attr::KERNEL_W] = k as u32;
        attrs[attr::STRIDE_H] = stride as u32;
        attrs[attr::STRIDE_W] = stride as u32;
        attrs[attr::PAD_TOP] = pad as u32;
        attrs[attr::PAD_LEFT] = pad as u32;
        self.push(
            kind,
            seg,
            in_seg,
            vec![x],
            [oh, ow, c],
            vec![],
            [0; 4],
            attrs,
            &mut |b, we, ws| {
                let div = if kind == OpKind::GlobalAvgPool {
                    (h * w) as f64
                } else {
                    1.0
                };
                b.rescaled_entry(x, (we, ws), div, None, &[])
            },
        )
    }

    /// Channel concatenation.
    pub fn concat(&mut self, seg: usize, in_seg: Option<usize>, xs: &[usize]) -> usize {
        let [h, w, _] = self.def.tensors[xs[0]].shape;
        let c: usize = xs.iter().map(|&t| self.def.tensors[t].shape[2]).sum();
        let xs = xs.to_vec();
        self.push(
            OpKind::Concat,
            seg,
            in_seg,
            xs.clone(),
            [h, w, c],
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (s_out, out_zp) = b.out_q();
                let mut extra = Vec::new();
                let mut total = 0;
                for &t in &xs {
                    let (ch, s, zp) = b.quant_of(t, we, ws);
                    let (m, sh) = quantize_multiplier(s as f64 / s_out as f64);
                    extra.extend_from_slice(&[ch as i32, zp, m, sh]);
                    total += ch;
                }
                EntryDef {
                    in_ch: extra[0] as usize,
                    out_ch: total,
                    in_zp: extra[1],
                    out_zp,
                    out_scale: s_out,
                    act: (-128, 127),
                    extra,
                    channels: vec![],
                }
            },
        )
    }

    /// A reshape view to `[1, 1, h * w * c]`.
    pub fn flatten(&mut self, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
        let [h, w, c] = self.def.tensors[x].shape;
        self.push(
            OpKind::Reshape,
            seg,
            in_seg,
            vec![x],
            [1, 1, h * w * c],
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (ch, s, zp) = b.quant_of(x, we, ws);
                EntryDef {
                    in_ch: ch,
                    out_ch: h * w * ch,
                    in_zp: zp,
                    out_zp: zp,
                    out_scale: s,
                    act: (-128, 127),
                    extra: vec![],
                    channels: vec![],
                }
            },
        )
    }

    /// Softmax over channels.
    pub fn softmax(&mut self, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
        let shape = self.def.tensors[x].shape;
        self.push(
            OpKind::Softmax,
            seg,
            in_seg,
            vec![x],
            shape,
            vec![],
            [0; 4],
            [0; op_field::N_ATTRS],
            &mut |b, we, ws| {
                let (ch, s, zp) = b.quant_of(x, we, ws);
                let (m, sh, diff_min) = softmax_params(s as f64);
                EntryDef {
                    in_ch: ch,
                    out_ch: ch,
                    in_zp: zp,
                    out_zp: -128,
                    out_scale: 1.0 / 256.0,
                    act: (-128, 127),
                    extra: vec![m, sh, diff_min],
                    channels: vec![],
                }
            },
        )
    }

    /// Declare a task with one output.
    pub fn task(&mut self, name: &str, seg: usize, output: usize) {
        self.def.tasks.push(TaskDef {
            name: name.into(),
            segment: seg,
            outputs: vec![OutputDef {
                name: name.into(),
                tensor: output,
            }],
        });
    }
}

/// The two-task model: an encoder (widths 0.5, 1.0) of conv, depthwise conv, pointwise conv,
/// residual add and max pool; a `digit` decoder (0.5, 1.0) of pointwise conv, global average
/// pool, fully connected and softmax; a `bold` decoder (0.25, 0.5, 1.0) of a fixed-width
/// pointwise conv, concat with the encoder output, average pool, flatten and fully connected.
pub fn two_task_model(seed: u64) -> ModelDef {
    let mut b = Builder::new(
        "two-task",
        &[
            ("encoder", &[0.5, 1.0]),
            ("digit", &[0.5, 1.0]),
            ("bold", &[0.25, 0.5, 1.0]),
        ],
        [8, 8, 1],
        seed,
    );
    let x = b.def.input;
    let t1 = b.conv(0, None, x, 8, 3, 1, 1, false, true, Act::Relu);
    let t2 = b.conv(0, None, t1, 8, 3, 2, 1, true, false, Act::Relu);
    let t3 = b.conv(0, None, t2, 8, 1, 1, 0, false, true, Act::None);
    let t4 = b.add(0, None, &[t2, t3], Act::Relu);
    let enc = b.pool(OpKind::MaxPool, 0, None, t4, 2, 2, 0);
    // digit
    let d1 = b.conv(1, Some(0), enc, 8, 1, 1, 0, false, true, Act::Relu);
    let d2 = b.pool(OpKind::GlobalAvgPool, 1, Some(0), d1, 0, 1, 0);
    let d3 = b.fc(1, Some(0), d2, 10, false);
    let d4 = b.softmax(1, Some(0), d3);
    b.task("digit", 1, d4);
    // bold
    // Only the last input of a concat may be slimmed, so the concatenation's active channels
    // stay first-k (docs/manifest.md): the decoder's own branch is fixed-width here.
    let e1 = b.conv(2, Some(0), enc, 8, 1, 1, 0, false, false, Act::Relu);
    let e2 = b.concat(2, Some(0), &[e1, enc]);
    let e3 = b.pool(OpKind::AvgPool, 2, Some(0), e2, 2, 2, 0);
    let e4 = b.flatten(2, Some(0), e3);
    let e5 = b.fc(2, Some(0), e4, 2, false);
    b.task("bold", 2, e5);
    b.def
}

/// The two-task model as a planned blob.
pub fn two_task_blob() -> Vec<u8> {
    two_task_model(7).to_bytes_planned().unwrap_or_default()
}
