//! The portable variant: the requantizing copy through one table (or a plain copy), whole
//! input rows at a time; the reference's bytes.

use super::reference::source;
use crate::kernels::common::{TABLE_MIN, is_identity, map_run, rescale_table};
use crate::kernels::{OutputStage, PadMode, Rescale, Shape};

/// Spatial padding; same contract and bytes as [`crate::kernels::reference::pad`].
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
    if out_shape.len() < TABLE_MIN || c == 0 || in_shape.c != c {
        return super::reference::pad(
            input, in_shape, pad, mode, value, r, stage, output, out_shape,
        );
    }
    let table = rescale_table(r, &stage);
    let identity = is_identity(&table);
    let row_len = out_shape.w * c;
    // Output columns that read input column `ox - pad[1]`: one contiguous run per row.
    let mid = pad[1].min(out_shape.w)..(pad[1] + in_shape.w).min(out_shape.w);
    for (oy, out_row) in output.chunks_exact_mut(row_len).enumerate() {
        let Some(y) = source(oy, pad[0], in_shape.h, mode) else {
            out_row.fill(value);
            continue;
        };
        let in_row = &input[y * in_shape.w * c..][..in_shape.w * c];
        for ox in (0..mid.start).chain(mid.end..out_shape.w) {
            let dst = &mut out_row[ox * c..][..c];
            match source(ox, pad[1], in_shape.w, mode) {
                None => dst.fill(value),
                Some(x) => map_run(dst, &in_row[x * c..][..c], &table, identity),
            }
        }
        // The run starts at input column 0 (it is empty when the left padding fills the row).
        map_run(
            &mut out_row[mid.start * c..mid.end * c],
            &in_row[..mid.len() * c],
            &table,
            identity,
        );
    }
}
