//! The portable variant: each input's rescaled contribution depends only on its int8 value,
//! so it is tabulated once per call (256 entries per input, computed by the reference's own
//! arithmetic), and each element costs table loads, saturating adds and one output
//! requantization instead of one requantization per input. Same bytes as the reference: the
//! table entry for value `x` is exactly the reference's term for `x`, summed in the same
//! order with the same saturating adds.

use super::reference;
use crate::kernels::{OutputStage, Rescale};
use crate::quant::multiply_by_quantized_multiplier;

/// Most inputs tabulated (their tables take 1 KiB of stack each).
const MAX_TABLES: usize = 4;

/// Each int8 value's term of an input rescaled by `r` after the left shift: entry `x as u8`
/// is exactly the reference's term for `x`.
pub(crate) fn table(r: Rescale, left_shift: i32) -> [i32; 256] {
    let ls = left_shift.clamp(0, 30) as u32;
    core::array::from_fn(|byte| {
        let x = byte as u8 as i8 as i32;
        let v = (x - r.zero_point).wrapping_shl(ls);
        multiply_by_quantized_multiplier(v, r.multiplier, r.shift)
    })
}

/// Element-wise add; same contract and bytes as [`reference::add`].
pub fn add(
    inputs: &[(&[i8], Rescale)],
    left_shift: i32,
    out_mult: i32,
    out_shift: i32,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n = output.len();
    // Building a table costs about as much as 256 elements of one input: below that the
    // reference's direct loop is cheaper.
    if inputs.len() > MAX_TABLES || n < 256 || inputs.iter().any(|(x, _)| x.len() < n) {
        return reference::add(inputs, left_shift, out_mult, out_shift, stage, output);
    }
    let mut tables = [[0i32; 256]; MAX_TABLES];
    for (t, &(_, r)) in tables.iter_mut().zip(inputs) {
        *t = table(r, left_shift);
    }
    let finish =
        |acc: i32| stage.finish(multiply_by_quantized_multiplier(acc, out_mult, out_shift));
    match inputs {
        [(a, _), (b, _)] => {
            let (ta, tb) = (&tables[0], &tables[1]);
            for ((o, &x), &y) in output.iter_mut().zip(&a[..n]).zip(&b[..n]) {
                let acc = 0i32
                    .saturating_add(ta[x as u8 as usize])
                    .saturating_add(tb[y as u8 as usize]);
                *o = finish(acc);
            }
        }
        _ => {
            for (j, o) in output.iter_mut().enumerate() {
                let mut acc = 0i32;
                for (t, (x, _)) in tables.iter().zip(inputs) {
                    acc = acc.saturating_add(t[x[j] as u8 as usize]);
                }
                *o = finish(acc);
            }
        }
    }
}
