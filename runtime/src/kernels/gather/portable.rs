//! The portable variant: the requantizing copy through one table, the reference's bytes.

use crate::kernels::common::{TABLE_MIN, is_identity, map_run, rescale_table};
use crate::kernels::{OutputStage, Rescale};

/// Channels `start + j * step`; same contract and bytes as
/// [`crate::kernels::reference::gather_channels`].
#[allow(clippy::too_many_arguments)]
pub fn gather_channels(
    input: &[i8],
    in_c: usize,
    start: usize,
    step: usize,
    r: Rescale,
    stage: OutputStage,
    output: &mut [i8],
    out_c: usize,
) {
    if output.len() < TABLE_MIN || out_c == 0 {
        return super::reference::gather_channels(
            input, in_c, start, step, r, stage, output, out_c,
        );
    }
    let table = rescale_table(r, &stage);
    let identity = is_identity(&table);
    for (p, row) in output.chunks_exact_mut(out_c).enumerate() {
        let src = &input[p * in_c + start..];
        if step == 1 {
            map_run(row, &src[..out_c], &table, identity);
        } else {
            for (j, o) in row.iter_mut().enumerate() {
                *o = table[(src[j * step] as i32 + 128) as usize];
            }
        }
    }
}
