//! Quantization: activation ranges per tensor per width key (from calibration through the
//! float reference at every width, or from the file's Q/DQ scales), int8 weights per output
//! channel (stored once), and each op's per-width parameter entries.

use crate::ir::QParams;
use crate::passes::lower::{CrossRead, LOp, Lowered};
use crate::reference;
use anyhow::{Result, bail};
use edgeslim_runtime::OpKind;
use edgeslim_runtime::quant::host::{add_params_n, quantize_multiplier, softmax_params};
use edgeslim_runtime::writer::{
    ChannelDef, EntryDef, ModelDef, OpDef, OutputDef, SegmentDef, TaskDef, TensorDef,
};

/// Calibration statistics: `(min, max)` per tensor per key of its segment.
#[derive(Debug, Clone)]
pub struct Ranges {
    /// `ranges[t][key]`.
    pub ranges: Vec<Vec<Option<(f32, f32)>>>,
    /// Samples seen.
    pub samples: usize,
}

/// Calibrate at every width: for each sample, the encoder once per encoder configuration (all
/// of them, or for a many-stage encoder a set covering every key:
/// [`Lowered::calibration_encoder_configs`]), then every decoder at each decoder width
/// (decoders are independent, so one pass at decoder width `d` covers them all).
///
/// A tensor of an encoder stage that a later segment reads gets one range per width of its own
/// stage (merged over the width of the stage before, which its readers do not key on); one read
/// by a segment keying on neither gets a single range.
pub fn calibrate(l: &Lowered, samples: &[Vec<f32>], progress: bool) -> Ranges {
    type Table = Vec<Vec<Option<(f32, f32)>>>;
    let empty = || -> Table {
        l.tensors
            .iter()
            .map(|t| vec![None; l.n_keys(t.segment)])
            .collect()
    };
    let configs = l.calibration_encoder_configs();
    let nenc = l.n_encoder;
    let bar = if progress {
        let b = indicatif::ProgressBar::new((samples.len() * configs.len()) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "calibrating {bar:40} {pos}/{len} runs ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let note = |r: &mut Table, t: usize, key: usize, v: &[f32]| {
        let (mut lo, mut hi) = r[t][key].unwrap_or((f32::INFINITY, f32::NEG_INFINITY));
        for &x in v {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        r[t][key] = Some((lo, hi));
    };
    let calibrate_chunk = |chunk: &[Vec<f32>]| -> Table {
        let mut ranges = empty();
        for x in chunk {
            // Decoders run under every encoder configuration: what they read (the last stage,
            // skips from earlier ones) varies with all of the stages' widths.
            for &we in &configs {
                let mut values: reference::Values = vec![None; l.tensors.len()];
                values[l.input] = Some(x.clone());
                reference::run(l, &mut values, we, 0, &|s| s < nenc);
                for (t, v) in values.iter().enumerate() {
                    let s = l.tensors[t].segment;
                    if let Some(v) = v
                        && s < nenc
                    {
                        note(&mut ranges, t, l.key(s, we, 0), v);
                    }
                }
                for d in 0..l.max_decoder_widths() {
                    if l.manifest.segments.len() == nenc {
                        break;
                    }
                    reference::run(l, &mut values, we, d, &|s| s >= nenc);
                    for (t, v) in values.iter().enumerate() {
                        let s = l.tensors[t].segment;
                        if s >= nenc
                            && let Some(v) = v
                        {
                            note(&mut ranges, t, l.key(s, we, d), v);
                        }
                    }
                }
                bar.inc(1);
            }
        }
        ranges
    };
    // Samples split over the cores; the ranges are unions, so the split does not matter.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = samples.len().div_ceil(threads).max(1);
    let parts: Vec<Table> = std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks(per)
            .map(|chunk| scope.spawn(move || calibrate_chunk(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut ranges = empty();
    for part in parts {
        for (acc, t) in ranges.iter_mut().zip(part) {
            for (a, b) in acc.iter_mut().zip(t) {
                *a = match (*a, b) {
                    (Some(x), Some(y)) => Some((x.0.min(y.0), x.1.max(y.1))),
                    (x, None) => x,
                    (None, y) => y,
                };
            }
        }
    }
    bar.finish_and_clear();
    merge_cross_segment(l, &mut ranges);
    Ranges {
        ranges,
        samples: samples.len(),
    }
}

/// Give the tensors read across segments the ranges their readers can key on: merged over the
/// producer's `in_segment` width when a reader does not key on it, over every key when a reader
/// keys on neither the producer's segment nor its `in_segment`.
fn merge_cross_segment(l: &Lowered, ranges: &mut [Vec<Option<(f32, f32)>>]) {
    let union = |a: Option<(f32, f32)>, b: Option<(f32, f32)>| match (a, b) {
        (Some(x), Some(y)) => Some((x.0.min(y.0), x.1.max(y.1))),
        (x, None) => x,
        (None, y) => y,
    };
    for (t, tensor) in l.tensors.iter().enumerate() {
        let n = l.n_widths(tensor.segment);
        let r = &mut ranges[t];
        match l.cross_reads(t) {
            CrossRead::Keyed => {}
            CrossRead::OwnWidth => {
                for w in 0..n {
                    let merged = r.iter().skip(w).step_by(n).copied().fold(None, union);
                    r.iter_mut().skip(w).step_by(n).for_each(|v| *v = merged);
                }
            }
            CrossRead::Fixed => {
                let all = r.iter().copied().fold(None, union);
                r.iter_mut().for_each(|v| *v = all);
            }
        }
    }
}

/// The real values an int8 tensor of quantization `q` can hold.
fn q_range(q: QParams) -> (f64, f64) {
    let s = q.scale as f64;
    (
        s * (-128 - q.zero_point) as f64,
        s * (127 - q.zero_point) as f64,
    )
}

/// A sound range of `op`'s output given its inputs' quantization `ins` (every value the op can
/// produce from int8 inputs lies inside), for the tensors a pre-quantized file leaves in float
/// (ONNX Runtime's QOperator format quantizes Conv and MatMul only): no calibration data is
/// needed. `None` where no bound is derived.
fn bound(op: &LOp, ins: &[QParams]) -> Option<(f32, f32)> {
    let r: Vec<(f64, f64)> = ins.iter().map(|&q| q_range(q)).collect();
    let union = |extra: &[f64]| {
        let lo = r
            .iter()
            .map(|v| v.0)
            .chain(extra.iter().copied())
            .fold(f64::INFINITY, f64::min);
        let hi = r
            .iter()
            .map(|v| v.1)
            .chain(extra.iter().copied())
            .fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let (lo, hi) = match op.kind {
        OpKind::Lut => {
            let f = op.unary?;
            let q = ins[0];
            let ys: Vec<f64> = (-128i32..=127)
                .map(|v| f.apply((v - q.zero_point) as f64 * q.scale as f64))
                .collect();
            (
                ys.iter().copied().fold(f64::INFINITY, f64::min),
                ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        }
        OpKind::Add => r.iter().enumerate().fold((0.0, 0.0), |(a, b), (k, v)| {
            let c = op.add_coefs.get(k).copied().unwrap_or(1.0) as f64;
            let (p, q) = (c * v.0, c * v.1);
            (a + p.min(q), b + p.max(q))
        }),
        OpKind::Mul => {
            let (a, b) = (r[0], r[1]);
            let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
            (
                p.iter().copied().fold(f64::INFINITY, f64::min),
                p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        }
        OpKind::PRelu => {
            let (a, b) = r[0];
            let mut v = vec![a, b, 0.0];
            for &s in &op.weights {
                v.extend([a * s as f64, b * s as f64]);
            }
            (
                v.iter().copied().fold(f64::INFINITY, f64::min),
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        }
        OpKind::Pad => union(&[op.pad_value as f64]),
        OpKind::MaxPool
        | OpKind::AvgPool
        | OpKind::GlobalAvgPool
        | OpKind::Resize
        | OpKind::Transpose
        | OpKind::GatherChannels
        | OpKind::MinMax
        | OpKind::Reshape
        | OpKind::Concat => union(&[]),
        OpKind::Conv2d | OpKind::FullyConnected | OpKind::ConvTranspose => {
            if op.per_width.is_some() {
                return None;
            }
            // Per output channel, the extremes of bias + sum w * x over x in [a, b].
            let (a, b) = r[0];
            let rows = op.wshape[0].max(1);
            let per = op.weights.len() / rows;
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for o in 0..rows {
                let (mut l0, mut h0) = (op.bias[o] as f64, op.bias[o] as f64);
                for &w in &op.weights[o * per..(o + 1) * per] {
                    let (p, q) = (w as f64 * a, w as f64 * b);
                    l0 += p.min(q);
                    h0 += p.max(q);
                }
                lo = lo.min(l0);
                hi = hi.max(h0);
            }
            (lo, hi)
        }
        OpKind::Softmax => (0.0, 1.0),
    };
    let (alo, ahi) = op.act.range();
    let (lo, hi) = ((lo as f32).max(alo), (hi as f32).min(ahi));
    (lo.is_finite() && hi.is_finite() && lo <= hi).then_some((lo, hi))
}

/// The input's quantization in a pre-quantized file that leaves the input in float up to a
/// data-movement op (QOperator's `input -> Pad -> QuantizeLinear`): that op's output
/// quantization, which the file applies to the moved values anyway.
fn input_from_consumers(l: &Lowered) -> Option<QParams> {
    if !l.prequantized {
        return None;
    }
    l.ops
        .iter()
        .filter(|op| op.inputs.first() == Some(&l.input))
        .filter(|op| {
            matches!(
                op.kind,
                OpKind::Pad
                    | OpKind::Reshape
                    | OpKind::MaxPool
                    | OpKind::Resize
                    | OpKind::Transpose
            )
        })
        .find_map(|op| l.tensors[op.output].quant)
}

/// For a pre-quantized file, the quantization the file itself applies downstream of each tensor
/// it leaves in float: ONNX Runtime's QOperator format runs the ops between two QLinearConvs in
/// float (PRelu, a residual Add, Sigmoid, ConvTranspose...) and quantizes only where the next
/// quantized op reads, often through data movement (`PRelu -> Pad -> QuantizeLinear`). A float
/// tensor that reaches such a QuantizeLinear through ops that only move values (Pad, Reshape,
/// Transpose, MaxPool, GatherChannels, Concat, Resize) is given that quantization: the runtime
/// then rounds where the file rounds, once, instead of at a calibrated scale and again at the
/// file's. `None` for the tensors the file quantizes itself and for those that reach no
/// quantization this way (their range comes from calibration or a bound).
fn quant_downstream(l: &Lowered) -> Vec<Option<QParams>> {
    let mut want: Vec<Option<QParams>> = vec![None; l.tensors.len()];
    if !l.prequantized {
        return want;
    }
    // Execution order: every consumer comes after its producer, so walking backwards settles a
    // tensor's consumers before the tensor.
    for op in l.ops.iter().rev() {
        let moves = matches!(
            op.kind,
            OpKind::Pad
                | OpKind::Reshape
                | OpKind::Transpose
                | OpKind::MaxPool
                | OpKind::GatherChannels
                | OpKind::Concat
                | OpKind::Resize
        );
        let Some(q) = l.tensors[op.output].quant.or(want[op.output]) else {
            continue;
        };
        if !moves {
            continue;
        }
        let n = if op.kind == OpKind::Concat {
            op.inputs.len()
        } else {
            1
        };
        for &i in op.inputs.iter().take(n) {
            if l.tensors[i].quant.is_none() && want[i].is_none() {
                want[i] = Some(q);
            }
        }
    }
    want
}

/// Whether `op` computes new values by interpolation (a bilinear Resize) rather than moving
/// its input's values: in a file that runs it in float, keeping the input's quantization would
/// round the interpolated values at the input's step, which the file does not do.
fn interpolates(op: &LOp) -> bool {
    op.kind == OpKind::Resize && op.attrs[edgeslim_runtime::ops::resize::attr::MODE] == 1
}

/// Asymmetric int8 parameters covering `[lo, hi]` (and zero).
pub fn qparams_for(lo: f32, hi: f32) -> QParams {
    let lo = lo.min(0.0);
    let hi = hi.max(0.0);
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zero_point = ((-128.0 - lo / scale).round() as i32).clamp(-128, 127);
    QParams { scale, zero_point }
}

fn q_act(v: f32, q: QParams, default: i32) -> i8 {
    if v.is_finite() {
        ((v / q.scale).round() as i64 + q.zero_point as i64).clamp(-128, 127) as i8
    } else {
        default as i8
    }
}

/// The words of a [`OpKind::Lut`] entry: `f` (the op's function and fused activation) at each
/// of the 256 int8 inputs of `qi`, quantized to `qo` with ONNX's QuantizeLinear rounding (half
/// to even) and clamped to `act`, four table bytes per little-endian word.
pub fn lut_words(f: impl Fn(f64) -> f64, qi: QParams, qo: QParams, act: (i8, i8)) -> Vec<i32> {
    let table: Vec<u8> = (-128i32..=127)
        .map(|q| {
            let y = f((q - qi.zero_point) as f64 * qi.scale as f64);
            let v = if y.is_nan() {
                qo.zero_point as f64
            } else {
                (y / qo.scale as f64).round_ties_even() + qo.zero_point as f64
            };
            v.clamp(act.0 as f64, act.1 as f64) as i8 as u8
        })
        .collect();
    table
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Build the model description.
pub fn run(l: &Lowered, ranges: Option<&Ranges>, warnings: &mut Vec<String>) -> Result<ModelDef> {
    // Quantization of each tensor at each key of its segment.
    let mut tq: Vec<Vec<Option<QParams>>> = l
        .tensors
        .iter()
        .map(|t| vec![None; l.n_keys(t.segment)])
        .collect();
    let full_key = |s: usize| l.n_keys(s) - 1;
    let mut reused = false;
    let mut bounded = false;
    let downstream = quant_downstream(l);
    let from_stats = |t: usize, k: usize| -> Option<QParams> {
        ranges
            .and_then(|r| r.ranges[t][k])
            .map(|(lo, hi)| qparams_for(lo, hi))
    };
    // The input: one quantization for every width.
    let input_q = match l.tensors[l.input].quant {
        Some(q) => q,
        None => {
            let mut lo = f32::INFINITY;
            let mut hi = f32::NEG_INFINITY;
            for (a, b) in ranges
                .map(|r| {
                    r.ranges[l.input]
                        .iter()
                        .flatten()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
            {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            match (lo.is_finite(), input_from_consumers(l)) {
                (true, _) => qparams_for(lo, hi),
                (false, Some(q)) => q,
                (false, None) => bail!("no calibration data for the input: pass --calib"),
            }
        }
    };
    for k in tq[l.input].iter_mut() {
        *k = Some(input_q);
    }
    for op in &l.ops {
        let s = op.segment;
        for (we, d) in l.grid() {
            let key = l.key(s, we, d);
            if tq[op.output][key].is_some() {
                continue;
            }
            let t = &l.tensors[op.output];
            let in_key = l.key(l.tensors[op.inputs[0]].segment, we, d);
            let q = if op.kind == OpKind::Transpose {
                // A permutation moves bytes: it keeps its input's quantization.
                tq[op.inputs[0]][in_key].unwrap_or(input_q)
            } else if op.kind == OpKind::Softmax {
                QParams {
                    scale: 1.0 / 256.0,
                    zero_point: -128,
                }
            } else if let (Some(a), true) = (t.quant, key == full_key(s)) {
                a
            } else if matches!(
                op.kind,
                OpKind::MaxPool | OpKind::Pad | OpKind::Resize | OpKind::GatherChannels
            ) && t.quant.is_none()
                && !(l.prequantized && interpolates(op))
            {
                tq[op.inputs[0]][in_key].unwrap_or(input_q)
            } else if let (Some(q), true) = (downstream[op.output], key == full_key(s)) {
                q
            } else if let Some(q) = from_stats(op.output, key) {
                q
            } else if let Some(a) = t.quant {
                reused = true;
                a
            } else if op.kind == OpKind::MaxPool || op.kind == OpKind::Reshape {
                tq[op.inputs[0]][in_key].unwrap_or(input_q)
            } else if let Some((lo, hi)) = l
                .prequantized
                .then(|| {
                    let ins: Option<Vec<QParams>> = op
                        .inputs
                        .iter()
                        .map(|&i| tq[i][l.key(l.tensors[i].segment, we, d)])
                        .collect();
                    bound(op, &ins?)
                })
                .flatten()
            {
                bounded = true;
                qparams_for(lo, hi)
            } else {
                bail!(
                    "node {} ({}): no quantization for tensor {} (the file states none): pass --calib",
                    op.name,
                    op.op_type,
                    t.name
                );
            };
            if !(q.scale.is_finite() && q.scale > 0.0) {
                bail!(
                    "node {} ({}): tensor {} gets no usable int8 scale ({}): its values \
                     overflow float32 (weights or calibration inputs too large?)",
                    op.name,
                    op.op_type,
                    t.name,
                    q.scale
                );
            }
            tq[op.output][key] = Some(q);
        }
        // A tensor read across segments holds one quantization per key its readers can tell
        // apart: the widest in-width's, or the full key's.
        let n = l.n_widths(s);
        let top = l.n_keys(s) - 1;
        let cross = l.cross_reads(op.output);
        let qs = &mut tq[op.output];
        for key in 0..qs.len() {
            let rep = match cross {
                CrossRead::Keyed => key,
                CrossRead::OwnWidth => top - (n - 1) + key % n,
                CrossRead::Fixed => top,
            };
            qs[key] = qs[rep];
        }
    }
    if bounded {
        warnings.push(
            "no --calib: tensors the file leaves in float are quantized to a bound derived from their quantized inputs (sound, but wider than calibrated ranges); pass --calib for tighter ones".into(),
        );
    }
    if reused {
        warnings.push(
            "no --calib: narrower widths reuse the file's full-width activation scales (accuracy may drop); pass --calib to calibrate each width".into(),
        );
    }
    let q_of = |t: usize, we: usize, d: usize| -> QParams {
        tq[t][l.key(l.tensors[t].segment, we, d)].unwrap_or(input_q)
    };

    let mut ops = Vec::new();
    for op in &l.ops {
        let s = op.segment;
        let err = |e: String| anyhow::anyhow!("node {} ({}): {e}", op.name, op.op_type);
        // int8 weights, once for every width.
        let (w8, s_w): (Vec<i8>, Vec<f32>) = if !op.kind.has_weights() {
            (vec![], vec![])
        } else if let Some(q) = &op.wq {
            (q.values.clone(), q.scales.clone())
        } else {
            let o = op.wshape[0];
            let per = op.weights.len() / o.max(1);
            let mut w8 = vec![0i8; op.weights.len()];
            let mut scales = vec![1f32; o];
            for r in 0..o {
                let row = &op.weights[r * per..(r + 1) * per];
                let m = row.iter().fold(0f32, |a, v| a.max(v.abs()));
                let sc = if m > 0.0 { m / 127.0 } else { 1.0 };
                scales[r] = sc;
                for (k, v) in row.iter().enumerate() {
                    w8[r * per + k] = (v / sc).round().clamp(-127.0, 127.0) as i8;
                }
            }
            (w8, scales)
        };
        let mut entries = Vec::new();
        let n_keys = l.n_keys(s);
        #[allow(clippy::needless_range_loop)] // `key` indexes several tables
        for key in 0..n_keys {
            // Any grid point with this key.
            let (we, d) = l.point_of_key(s, key);
            let ch = &op.channels[key];
            let qi = q_of(op.inputs[0], we, d);
            let qo = tq[op.output][key].unwrap_or(input_q);
            let (lo, hi) = op.act.range();
            let act = (q_act(lo, qo, -128), q_act(hi, qo, 127));
            let mut e = EntryDef {
                in_ch: ch.inputs[0],
                out_ch: ch.out,
                in_zp: qi.zero_point,
                out_zp: qo.zero_point,
                out_scale: qo.scale,
                act,
                extra: vec![],
                channels: vec![],
            };
            match op.kind {
                OpKind::Conv2d | OpKind::FullyConnected | OpKind::ConvTranspose => {
                    let (scale, bias) = reference::width_params(op, l.width_at(s, we, d), ch.out);
                    let per = w8.len() / op.wshape[0].max(1);
                    for o in 0..ch.out {
                        let sw = s_w[o] as f64 * scale[o] as f64;
                        if sw <= 0.0 || !sw.is_finite() {
                            return Err(err(format!(
                                "output channel {o}: effective weight scale {sw} (per_width channel_scale must be > 0)"
                            )));
                        }
                        let acc_scale = qi.scale as f64 * sw;
                        if !(acc_scale / qo.scale as f64).is_finite() {
                            return Err(err(format!(
                                "output channel {o}: the requantization scale {acc_scale} / {} \
                                 is not finite (weights too large?)",
                                qo.scale
                            )));
                        }
                        let b = (bias[o] as f64 / acc_scale).round();
                        if b.abs() > i32::MAX as f64 {
                            return Err(err(format!(
                                "output channel {o}: bias {} overflows int32",
                                bias[o]
                            )));
                        }
                        let wsum: i64 = w8[o * per..(o + 1) * per]
                            .iter()
                            .map(|&w| (w as i64).abs())
                            .sum();
                        let bound = wsum * 255 + b.abs() as i64;
                        if bound > i32::MAX as i64 {
                            return Err(err(format!(
                                "output channel {o}: the int32 accumulator may overflow (bound {bound})"
                            )));
                        }
                        let (multiplier, shift) = quantize_multiplier(acc_scale / qo.scale as f64);
                        e.channels.push(ChannelDef {
                            bias: b as i32,
                            multiplier,
                            shift,
                        });
                    }
                }
                OpKind::Add => {
                    let qs: Vec<QParams> = op.inputs.iter().map(|&t| q_of(t, we, d)).collect();
                    // A factor scales its input (Mean: 1/n); a negative one negates the input's
                    // multiplier (Sub), which the Add kernels take as it is.
                    let coef = |k: usize| op.add_coefs.get(k).copied().unwrap_or(1.0) as f64;
                    let scales: Vec<f64> = qs
                        .iter()
                        .enumerate()
                        .map(|(k, q)| q.scale as f64 * coef(k).abs())
                        .collect();
                    let (mut ins, (mo, so), ls) = add_params_n(&scales, qo.scale as f64);
                    for (k, m) in ins.iter_mut().enumerate() {
                        if coef(k) < 0.0 {
                            m.0 = -m.0;
                        }
                    }
                    e.extra = vec![qs[1].zero_point, ins[0].0, ins[0].1, ins[1].0, ins[1].1];
                    e.extra.extend_from_slice(&[mo, so, ls]);
                    for (q, &(m, s)) in qs.iter().zip(&ins).skip(2) {
                        e.extra.extend_from_slice(&[q.zero_point, m, s]);
                    }
                }
                OpKind::MaxPool | OpKind::AvgPool | OpKind::GlobalAvgPool => {
                    let t = &l.tensors[op.inputs[0]];
                    let div = if op.kind == OpKind::GlobalAvgPool {
                        (t.shape[0] * t.shape[1]) as f64
                    } else {
                        1.0
                    };
                    let (m, sh) = quantize_multiplier(qi.scale as f64 / (qo.scale as f64 * div));
                    e.extra = vec![m, sh];
                }
                OpKind::Concat => {
                    for (k, &t) in op.inputs.iter().enumerate() {
                        let q = q_of(t, we, d);
                        let (m, sh) = quantize_multiplier(q.scale as f64 / qo.scale as f64);
                        e.extra
                            .extend_from_slice(&[ch.inputs[k] as i32, q.zero_point, m, sh]);
                    }
                }
                OpKind::Softmax => {
                    let (m, sh, dmin) = softmax_params(qi.scale as f64);
                    e.extra = vec![m, sh, dmin];
                    e.act = (-128, 127);
                }
                OpKind::Lut => {
                    let f = op
                        .unary
                        .ok_or_else(|| err("a table op without its function".into()))?;
                    e.extra = lut_words(|x| op.act.apply(f.apply(x) as f32) as f64, qi, qo, act);
                }
                OpKind::Mul => {
                    let q2 = q_of(op.inputs[1], we, d);
                    let (m, sh) =
                        quantize_multiplier(qi.scale as f64 * q2.scale as f64 / qo.scale as f64);
                    e.extra = vec![q2.zero_point, m, sh];
                }
                OpKind::PRelu => {
                    let (m, sh) = quantize_multiplier(qi.scale as f64 / qo.scale as f64);
                    e.extra = vec![m, sh];
                    for &sw in &s_w[..ch.out] {
                        let (multiplier, shift) =
                            quantize_multiplier(qi.scale as f64 * sw as f64 / qo.scale as f64);
                        e.channels.push(ChannelDef {
                            bias: 0,
                            multiplier,
                            shift,
                        });
                    }
                }
                OpKind::MinMax => {
                    let q2 = q_of(op.inputs[1], we, d);
                    let (m1, s1) = quantize_multiplier(qi.scale as f64 / qo.scale as f64);
                    let (m2, s2) = quantize_multiplier(q2.scale as f64 / qo.scale as f64);
                    e.extra = vec![q2.zero_point, m1, s1, m2, s2];
                }
                OpKind::GatherChannels => {
                    let (m, sh) = quantize_multiplier(qi.scale as f64 / qo.scale as f64);
                    e.extra = vec![m, sh];
                }
                OpKind::Pad => {
                    let (m, sh) = quantize_multiplier(qi.scale as f64 / qo.scale as f64);
                    let v = q_act(op.act.apply(op.pad_value), qo, qo.zero_point);
                    e.extra = vec![v as i32, m, sh];
                }
                OpKind::Resize => {
                    let linear = op.attrs[edgeslim_runtime::ops::resize::attr::MODE] == 1;
                    let weights = if linear {
                        (1u64 << (2 * edgeslim_runtime::ops::resize::WEIGHT_BITS)) as f64
                    } else {
                        1.0
                    };
                    let (m, sh) = quantize_multiplier(qi.scale as f64 / qo.scale as f64 / weights);
                    e.extra = vec![m, sh];
                }
                OpKind::Reshape | OpKind::Transpose => {}
            }
            entries.push(e);
        }
        ops.push(OpDef {
            kind: op.kind,
            segment: s,
            in_segment: op.in_segment,
            inputs: op.inputs.clone(),
            output: op.output,
            weights: w8,
            wshape: op.wshape,
            attrs: op.attrs,
            entries,
        });
    }
    Ok(ModelDef {
        name: l.name.clone(),
        segments: l
            .manifest
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| SegmentDef {
                name: s.name.clone(),
                widths: s.widths.clone(),
                in_segment: l.seg_in[i],
            })
            .collect(),
        encoder_segments: l.n_encoder,
        tasks: l
            .tasks
            .iter()
            .map(|t| TaskDef {
                name: t.name.clone(),
                segment: t.segment,
                outputs: t
                    .outputs
                    .iter()
                    .map(|(n, tt)| OutputDef {
                        name: n.clone(),
                        tensor: *tt,
                    })
                    .collect(),
            })
            .collect(),
        tensors: l
            .tensors
            .iter()
            .map(|t| TensorDef {
                name: t.name.clone(),
                shape: t.shape,
                segment: t.segment,
            })
            .collect(),
        ops,
        input: l.input,
        input_scale: input_q.scale,
        input_zero_point: input_q.zero_point,
    })
}
