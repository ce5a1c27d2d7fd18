//! Ops over the channels of each position: Softmax and GatherChannels.

use crate::schema::{Options, op};
use crate::{Ex, ExportError, rescales_by, tflite_multiplier};
use edgeslim_runtime::OpInfo;

type Refuse<'a> = &'a dyn Fn(&str) -> ExportError;

/// What TFLite's int8 `SOFTMAX` derives from `beta` and the input scale (its reference
/// kernel's `PreprocessSoftmaxScaling` with 5 integer bits, `QuantizeMultiplierGreaterThanOne`
/// and `CalculateInputRadius`): `(beta multiplier, left shift, diff_min)`, or `None` where
/// TFLite would stop (a real multiplier of at most 1).
pub fn softmax_derivation(beta: f32, input_scale: f32) -> Option<(i32, i32, i32)> {
    const INTEGER_BITS: i32 = 5;
    let real = (beta as f64 * input_scale as f64 * (1i64 << (31 - INTEGER_BITS)) as f64)
        .min((1i64 << 31) as f64 - 1.0);
    if real.is_nan() || real <= 1.0 {
        return None;
    }
    let (m, shift) = tflite_multiplier(real);
    let radius = ((1i64 << INTEGER_BITS) - 1) as f64 * (1i64 << (31 - INTEGER_BITS)) as f64
        / 2f64.powi(shift);
    Some((m, shift, -(radius.floor() as i32)))
}

impl Ex<'_, '_> {
    /// `SOFTMAX` over the channels (TFLite's reference int8 kernel is the gemmlowp
    /// fixed-point algorithm the runtime's is a port of). TFLite derives the beta multiplier
    /// from `beta` and the input scale: `beta` is 1 when that gives the blob's words, else the
    /// float32 nearest to doing so. TFLite requires the output at scale 1/256 and zero point
    /// -128, which is what the runtime writes whatever the output tensor's label; a blob
    /// that labels it otherwise is refused (a `QUANTIZE` would change the runtime's bytes).
    pub(crate) fn softmax(
        &mut self,
        _i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::softmax::word;
        let (x, out, en) = self.io(o)?;
        if self.quant(out) != (1.0 / 256.0, -128) {
            return Err(refuse(
                "its output is labelled with a quantization other than scale 1/256, zero point \
                 -128 (the values the runtime writes, and the only output TFLite's SOFTMAX has)",
            ));
        }
        let want = (
            en.extra(word::BETA_M),
            en.extra(word::BETA_SHIFT),
            en.extra(word::DIFF_MIN),
        );
        let s_in = self.quant(x).0;
        let beta = softmax_beta(s_in, want)
            .ok_or_else(|| refuse("an input scale below 2^-26, which TFLite's SOFTMAX rejects"))?;
        self.mismatches.1 += 1;
        if softmax_derivation(beta, s_in) != Some(want) {
            self.mismatches.0 += 1;
        }
        self.emit_unfused(
            op::SOFTMAX,
            2,
            vec![x],
            out,
            en.act(),
            Options::Softmax { beta },
        );
        Ok(())
    }

    /// Channel selection as `GATHER` on the channel axis with constant int32 indices (a copy
    /// at the input's quantization), then an `ADD` of 0 when the output's differs.
    pub(crate) fn gather_channels(
        &mut self,
        i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::gather::{attr, word};
        let (x, out, en) = self.io(o)?;
        let (xs, os) = (self.shape(x), self.shape(out));
        let (start, step) = (o.attrs[attr::START] as i64, o.attrs[attr::STEP] as i64);
        let idx: Vec<i64> = (0..os[3] as i64).map(|j| start + j * step).collect();
        if idx.iter().any(|&k| k >= xs[3] as i64) || xs[1..3] != os[1..3] {
            return Err(refuse("selected channels outside the active input"));
        }
        let q = self.quant(x);
        if !rescales_by(
            en.extra(word::M),
            en.extra(word::S),
            q.0 as f64 / self.quant(out).0 as f64,
        ) {
            return Err(refuse(
                "its rescale is not the input scale over the output's",
            ));
        }
        let idx: Vec<i32> = idx.iter().map(|&k| k as i32).collect();
        let it = self.const_i32(format!("op{i}/indices"), vec![os[3]], &idx);
        self.emit_at(
            op::GATHER,
            2,
            vec![x, it],
            q,
            out,
            en.act(),
            Options::Gather { axis: 3 },
        );
        Ok(())
    }
}

/// The float32 `beta` for which TFLite derives `want` from `input_scale`: 1 when it does,
/// else the nearest (within 64 float32 steps) that does, else the nearest in real value.
fn softmax_beta(input_scale: f32, want: (i32, i32, i32)) -> Option<f32> {
    let d = softmax_derivation(1.0, input_scale)?;
    if d == want {
        return Some(1.0);
    }
    let target = want.0 as f64 * 2f64.powi(want.1 - 31);
    let b0 = (target / (input_scale as f64 * (1i64 << 26) as f64)) as f32;
    if !(b0.is_finite() && b0 > 0.0) {
        return Some(1.0);
    }
    let mut best = (b0, f64::INFINITY);
    for k in -64i64..=64 {
        let b = f32::from_bits((b0.to_bits() as i64 + k) as u32);
        let Some(got) = softmax_derivation(b, input_scale) else {
            continue;
        };
        if got == want {
            return Some(b);
        }
        let err = (got.0 as f64 * 2f64.powi(got.1 - 31) - target).abs();
        if err < best.1 {
            best = (b, err);
        }
    }
    Some(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_derivation_is_the_runtimes_at_beta_one() {
        for s in [0.0039f32, 0.0625, 0.1, 0.173, 0.5, 1.7] {
            let (m, sh, dmin) = edgeslim_runtime::quant::host::softmax_params(s as f64);
            assert_eq!(softmax_derivation(1.0, s), Some((m, sh, dmin)), "scale {s}");
        }
        assert_eq!(softmax_derivation(1.0, 1e-9), None);
    }

    #[test]
    fn softmax_beta_reproduces_another_multiplier() {
        let s = 0.1f32;
        let want = softmax_derivation(0.75, s).expect("derivable");
        let b = softmax_beta(s, want).expect("beta");
        assert_eq!(softmax_derivation(b, s), Some(want));
        assert_eq!(
            softmax_beta(s, softmax_derivation(1.0, s).expect("derivable")),
            Some(1.0)
        );
    }
}
