//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::{OutputStage, PadMode, Rescale, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// The input row (or column) that output row `i` reads, for `pad` leading rows over an input
/// of `n` rows: `None` for a constant fill. Reflect mirrors about the first and last row
/// without repeating them (`pad < n`, checked by the op's prepare); edge repeats them.
///
/// `i`, `pad` and `n` are at most [`MAX_COORD`](crate::ops::MAX_COORD) (the op's prepare
/// bounds the output's sides), so the `isize` arithmetic is exact on 32-bit targets too.
pub fn source(i: usize, pad: usize, n: usize, mode: PadMode) -> Option<usize> {
    let j = i as isize - pad as isize;
    let n = n as isize;
    if (0..n).contains(&j) {
        return Some(j as usize);
    }
    match mode {
        PadMode::Constant => None,
        PadMode::Edge => Some(j.clamp(0, n - 1) as usize),
        PadMode::Reflect => {
            // `(n - 1) - (j - (n - 1))` is `2 (n - 1) - j` without forming `2 (n - 1)`, which
            // would overflow `isize` on 32-bit targets for sides near `MAX_COORD`.
            let r = if j < 0 { -j } else { (n - 1) - (j - (n - 1)) };
            Some(r.clamp(0, n - 1) as usize)
        }
    }
}

/// Pad `input` (`in_shape`) to `out_shape` with `pad = [top, left]` leading rows and columns:
/// copied values are requantized by `r` (input zero point, multiplier, shift) and finished by
/// `stage`; constant-mode fill positions hold `value` (already in the output's quantization).
#[allow(clippy::too_many_arguments)]
pub fn pad(
    input: &[i8],
    in_shape: Shape,
    pad: [usize; 2],
    mode: PadMode,
    value: i8,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let c = out_shape.c;
    for oy in 0..out_shape.h {
        for ox in 0..out_shape.w {
            let o = (oy * out_shape.w + ox) * c;
            let src =
                source(oy, pad[0], in_shape.h, mode).zip(source(ox, pad[1], in_shape.w, mode));
            for ch in 0..c {
                output[o + ch] = match src {
                    None => value,
                    Some((y, x)) => {
                        let v = input[(y * in_shape.w + x) * in_shape.c + ch] as i32 - r.zero_point;
                        stage.finish(multiply_by_quantized_multiplier(v, r.multiplier, r.shift))
                    }
                };
            }
        }
    }
}
