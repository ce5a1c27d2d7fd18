//! The portable variant: per input, one table of its requantizing copy (or a plain copy), the
//! reference's bytes.

use crate::kernels::common::{TABLE_MIN, is_identity, map_run, rescale_table};
use crate::kernels::{OutputStage, Rescale};

/// Channel concatenation; same contract and bytes as [`crate::kernels::reference::concat`].
pub fn concat(
    inputs: &[(&[i8], usize, Rescale)],
    positions: usize,
    stage: OutputStage,
    output: &mut [i8],
) {
    let out_c: usize = inputs.iter().map(|i| i.1).sum();
    if positions * out_c < TABLE_MIN {
        return super::reference::concat(inputs, positions, stage, output);
    }
    let mut off = 0;
    for &(data, c, r) in inputs {
        let table = rescale_table(r, &stage);
        let identity = is_identity(&table);
        for (dst, src) in output
            .chunks_exact_mut(out_c)
            .zip(data.chunks_exact(c.max(1)))
            .take(positions)
        {
            map_run(&mut dst[off..off + c], src, &table, identity);
        }
        off += c;
    }
}
