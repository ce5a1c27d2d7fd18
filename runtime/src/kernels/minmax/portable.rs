//! The portable variant: each input's rescale and the output stage as one table per input,
//! then a minimum or maximum of two lookups; the reference's bytes, because the output stage
//! (add the zero point, clamp) is non-decreasing and so commutes with min and max.

use crate::kernels::common::{TABLE_MIN, rescale_table};
use crate::kernels::{OutputStage, Rescale};

/// Element-wise Max or Min; same contract and bytes as
/// [`crate::kernels::reference::minmax`].
pub fn minmax(
    min: bool,
    (a, ra): (&[i8], Rescale),
    (b, rb): (&[i8], Rescale),
    stage: OutputStage,
    output: &mut [i8],
) {
    if output.len() < TABLE_MIN {
        return super::reference::minmax(min, (a, ra), (b, rb), stage, output);
    }
    let (ta, tb) = (rescale_table(ra, &stage), rescale_table(rb, &stage));
    let pairs = output.iter_mut().zip(a.iter().zip(b));
    if min {
        for (o, (&x, &y)) in pairs {
            *o = ta[(x as i32 + 128) as usize].min(tb[(y as i32 + 128) as usize]);
        }
    } else {
        for (o, (&x, &y)) in pairs {
            *o = ta[(x as i32 + 128) as usize].max(tb[(y as i32 + 128) as usize]);
        }
    }
}
