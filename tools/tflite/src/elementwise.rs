//! Element-wise ops of two or more tensors: Add (any number of inputs, plain, subtracting or
//! scaled), Mul, Max/Min and PRelu.

use crate::schema::{Activation, Options, Padding, Quant, Tensor, op, tensor_type};
use crate::{Ex, ExportError, filter_scale, real, rescales_by};
use edgeslim_runtime::OpInfo;

type Refuse<'a> = &'a dyn Fn(&str) -> ExportError;

impl Ex<'_, '_> {
    /// `out = sum_k e_k (x_k - zp_k) + zp_out`, each `e_k` the blob's signed effective
    /// multiplier of input `k` relative to the output. TFLite's `ADD`/`SUB` rescale each input
    /// by its scale over the output's, so every `e_k` must be that ratio times one common
    /// factor `r` (1 for an Add or Sub, `1/n` for ONNX Mean of `n`): a chain of `ADD`/`SUB`
    /// whose partial sums are int8 tensors quantized to hold every value they can reach (so
    /// none saturates), the last sum at scale `s_out / r` and the output's zero point (the
    /// output itself when `r = 1`), and a `MUL` by a constant 1 of scale `r` gives those bytes
    /// the output's label (exact: its multiplier is 1). A sum of more than two inputs rounds at
    /// every partial sum where the runtime rounds once.
    pub(crate) fn add(
        &mut self,
        _i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::add::word;
        let out = self.activation(o.output)?;
        let en = self.m.entry(o, self.m.key(o, &self.w));
        let (s_out, zp_out) = self.quant(out);
        let left = 2f64.powi(en.extra(word::LEFT_SHIFT));
        let outm = real(en.extra(word::MO), en.extra(word::SO));
        let mut terms = Vec::with_capacity(o.n_inputs);
        let mut ratio: Option<f64> = None;
        for k in 0..o.n_inputs {
            let t = self.activation(self.m.op_input(o, k))?;
            let (_, mw, sw) = word::input(k);
            let eff = real(en.extra(mw), en.extra(sw)) * left * outm;
            let r = eff / (self.quant(t).0 as f64 / s_out as f64);
            if !(r.is_finite() && r.abs() > 1e-6) {
                return Err(refuse("an input with no weight in the sum"));
            }
            match ratio {
                None => ratio = Some(r.abs()),
                Some(q) if (r.abs() / q - 1.0).abs() > 1e-3 => {
                    return Err(refuse(
                        "inputs scaled by different factors (a weighted sum) have no TFLite \
                         ADD form",
                    ));
                }
                Some(_) => {}
            }
            terms.push((t, r > 0.0));
        }
        let r = ratio.unwrap_or(1.0);
        let r = if (r - 1.0).abs() <= 1e-3 { 1.0 } else { r };
        // TFLite's SUB subtracts its second input: start the chain with an added input.
        let first = terms
            .iter()
            .position(|&(_, plus)| plus)
            .ok_or_else(|| refuse("an Add that negates every input"))?;
        let (mut acc, _) = terms.remove(first);
        let sigma = (s_out as f64 / r) as f32;
        let name = self.g.tensors[out as usize].name.clone();
        let n = terms.len();
        // The real range a partial sum can reach: its tensor covers it, so that no partial
        // sum saturates where the runtime's exact sum does not.
        let range = |q: (f32, i32)| {
            let s = q.0 as f64;
            (s * (-128 - q.1) as f64, s * (127 - q.1) as f64)
        };
        let (mut lo, mut hi) = range(self.quant(acc));
        for (k, (t, plus)) in terms.into_iter().enumerate() {
            let (a, b) = range(self.quant(t));
            (lo, hi) = if plus {
                (lo + a, hi + b)
            } else {
                (lo - b, hi - a)
            };
            let (code, options): (i32, fn(Activation) -> Options) = if plus {
                (op::ADD, |act| Options::Add { act })
            } else {
                (op::SUB, |act| Options::Sub { act })
            };
            if k + 1 == n && r == 1.0 {
                self.emit_clamped(code, 2, vec![acc, t], out, en.act(), options);
                return Ok(());
            }
            let shape = self.shape(out);
            let (scale, zp) = if k + 1 == n {
                (sigma, zp_out)
            } else {
                let scale = ((hi - lo) / 255.0) as f32;
                let zp = (-128.0 - lo / scale as f64).round().clamp(-128.0, 127.0) as i32;
                (scale, zp)
            };
            let partial = self.temp(format!("{name}/sum{k}"), shape, scale, zp);
            self.push(
                code,
                2,
                vec![acc, t],
                vec![partial],
                options(Activation::None),
            );
            acc = partial;
        }
        // The sum is at scale s_out / r: a multiplication by 1 at scale r relabels it.
        let one = self.const_i8(format!("{name}/scale"), 1, r as f32, 0);
        self.emit_clamped(op::MUL, 2, vec![acc, one], out, en.act(), |act| {
            Options::Mul { act }
        });
        Ok(())
    }

    /// `MUL`, the second operand of the first's shape or one value per channel (`[1, 1, 1,
    /// C]`, which TFLite broadcasts). TFLite derives the multiplier from the three scales as
    /// the compiler does.
    pub(crate) fn mul(
        &mut self,
        _i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::mul::word;
        let (a, out, en) = self.io(o)?;
        let b = self.activation(self.m.op_input(o, 1))?;
        let (sa, sb, so) = (self.quant(a).0, self.quant(b).0, self.quant(out).0);
        if !rescales_by(
            en.extra(word::M),
            en.extra(word::S),
            sa as f64 * sb as f64 / so as f64,
        ) {
            return Err(refuse(
                "its multiplier is not the product of the input scales over the output's",
            ));
        }
        let (xa, xb) = (self.shape(a), self.shape(b));
        if !(xa == xb || (xb[1] == 1 && xb[2] == 1 && xb[3] == xa[3])) {
            return Err(refuse(
                "the second operand is neither the first's shape nor one value per channel",
            ));
        }
        self.emit_clamped(op::MUL, 2, vec![a, b], out, en.act(), |act| Options::Mul {
            act,
        });
        Ok(())
    }

    /// `MAXIMUM`/`MINIMUM` of the two inputs, each first requantized to the output's
    /// quantization (an `ADD` of 0, where it differs), as the runtime does: rounding to a common
    /// scale keeps the order, so only the requantization rounds.
    pub(crate) fn minmax(
        &mut self,
        _i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::minmax::{attr, word};
        let (a, out, en) = self.io(o)?;
        let b = self.activation(self.m.op_input(o, 1))?;
        let q = self.quant(out);
        for (t, mw, sw) in [(a, word::M1, word::S1), (b, word::M2, word::S2)] {
            let want = self.quant(t).0 as f64 / q.0 as f64;
            if !rescales_by(en.extra(mw), en.extra(sw), want) {
                return Err(refuse(
                    "an input's rescale is not its scale over the output's",
                ));
            }
        }
        if self.shape(a) != self.shape(b) {
            return Err(refuse("inputs of different shapes"));
        }
        let a = self.at_quant(a, q);
        let b = self.at_quant(b, q);
        let code = if o.attrs[attr::MODE] == 1 {
            op::MINIMUM
        } else {
            op::MAXIMUM
        };
        self.emit_unfused(code, 2, vec![a, b], out, en.act(), Options::MaxMin);
        Ok(())
    }

    /// PRelu. TFLite's `PRELU` has one scale for all its slopes: when the blob's per-channel
    /// multipliers of the negative side are all one `(m, s)`, the slopes become a `[1, 1, 1,
    /// C]` int8 constant of a scale for which TFLite derives that multiplier. Otherwise the
    /// op is `MAXIMUM` and `MINIMUM` with the zero point (the two sides), an `ADD` of 0
    /// requantizing the non-negative side, a 1x1 `DEPTHWISE_CONV_2D` with per-channel scales
    /// and the slopes as weights for the negative side, and an `ADD` of the two at the
    /// output's quantization (exact: one of the two is the zero point, and an `ADD` of
    /// tensors of the output's quantization rescales by powers of two).
    pub(crate) fn prelu(
        &mut self,
        i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::prelu::word;
        let (x, out, en) = self.io(o)?;
        let (s_in, zp_in) = self.quant(x);
        let (s_out, zp_out) = self.quant(out);
        let c = self.shape(x)[3] as usize;
        let (m_pos, s_pos) = (en.extra(word::M_POS), en.extra(word::S_POS));
        if !rescales_by(m_pos, s_pos, s_in as f64 / s_out as f64) {
            return Err(refuse(
                "the non-negative side's rescale is not the input scale over the output's",
            ));
        }
        let ch = self.channels(&en, c);
        let w = self.m.weights(o);
        if c == 0 || ch.len() != c || w.len() < c || self.shape(out) != self.shape(x) {
            return Err(refuse(
                "slopes or channel table shorter than the active channels",
            ));
        }
        let alpha: Vec<u8> = w[..c].to_vec();
        let name = format!("op{i}");
        let (m0, s0) = (ch[0].1, ch[0].2);
        if ch.iter().all(|&(_, m, s)| (m, s) == (m0, s0)) {
            let (f, exact) = filter_scale(s_in, s_out, m0, s0);
            self.mismatches.1 += 1;
            self.mismatches.0 += usize::from(!exact);
            let buffer = self.buffer(alpha);
            let slopes = self.tensor(Tensor {
                shape: vec![1, 1, 1, c as i32],
                ty: tensor_type::INT8,
                buffer,
                name: format!("{name}/alpha"),
                quant: Some(Quant {
                    scale: vec![f],
                    zero_point: vec![0],
                    dimension: 0,
                }),
            });
            self.emit_unfused(op::PRELU, 1, vec![x, slopes], out, en.act(), Options::None);
            return Ok(());
        }
        let zero = self.const_i8(format!("{name}/zero_point"), zp_in as i8, s_in, zp_in);
        let shape = self.shape(x);
        let upper = self.temp(format!("{name}/non_negative"), shape.clone(), s_in, zp_in);
        let lower = self.temp(format!("{name}/negative"), shape.clone(), s_in, zp_in);
        self.push(op::MAXIMUM, 2, vec![x, zero], vec![upper], Options::MaxMin);
        self.push(op::MINIMUM, 2, vec![x, zero], vec![lower], Options::MaxMin);
        let pos = self.at_quant(upper, (s_out, zp_out));
        let neg = self.temp(format!("{name}/negative_side"), shape, s_out, zp_out);
        let slopes: Vec<i8> = alpha.iter().map(|&b| b as i8).collect();
        let unbiased: Vec<(i32, i32, i32)> = ch.iter().map(|&(_, m, s)| (0, m, s)).collect();
        let (f, b) = self.filter_and_bias(
            &name,
            slopes,
            vec![1, 1, 1, c as i32],
            3,
            &unbiased,
            (s_in, s_out),
        );
        self.push(
            op::DEPTHWISE_CONV_2D,
            3,
            vec![lower, f, b],
            vec![neg],
            Options::Depthwise {
                padding: Padding::Valid,
                stride: [1, 1],
                dilation: [1, 1],
                multiplier: 1,
                act: Activation::None,
            },
        );
        self.emit_clamped(op::ADD, 2, vec![pos, neg], out, en.act(), |act| {
            Options::Add { act }
        });
        Ok(())
    }
}
