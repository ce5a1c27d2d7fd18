//! Resize as `RESIZE_NEAREST_NEIGHBOR` / `RESIZE_BILINEAR`.
//!
//! The runtime maps each output row and column to input positions through ONNX's exact
//! rational coordinate (`kernels/resize/reference.rs`); TFLite's kernels map them with two
//! flags, `align_corners` and `half_pixel_centers`, in float32 (nearest) or with a scale
//! rounded to 1/1024 (bilinear). Rather than trust a table of which ONNX modes correspond, the
//! exporter computes both mappings for every output row and column of the op and takes the
//! flags for which TFLite reads exactly the runtime's input positions with exactly its weights;
//! when no flags do (ONNX's `round_prefer_floor` at a tie, `ceil`, a scale whose 1/1024
//! rounding moves a weight, ...), the op is refused and the error says so.

use crate::schema::{Options, op};
use crate::{Ex, ExportError, rescales_by};
use edgeslim_runtime::OpInfo;
use edgeslim_runtime::kernels::ResizeGeometry;
use edgeslim_runtime::kernels::resize::reference::{coordinate, linear_taps, nearest_index};
use std::collections::BTreeMap;

type Refuse<'a> = &'a dyn Fn(&str) -> ExportError;

/// The flag pairs `(align_corners, half_pixel_centers)` TFLite accepts.
const FLAGS: [(bool, bool); 3] = [(false, false), (false, true), (true, false)];

/// The input index TFLite's `RESIZE_NEAREST_NEIGHBOR` reads for output `x` along an axis of
/// `n_in` inputs and `n_out` outputs (its reference kernel's `GetNearestNeighbor`, in float32).
pub fn tflite_nearest(x: usize, n_in: usize, n_out: usize, align: bool, half: bool) -> i64 {
    let scale = if align && n_out > 1 {
        n_in.saturating_sub(1) as f32 / (n_out - 1) as f32
    } else {
        n_in as f32 / n_out as f32
    };
    let offset = if half { 0.5f32 } else { 0.0 };
    let v = (x as f32 + offset) * scale;
    // TfLiteRound rounds half away from zero, as f32::round.
    let i = (if align { v.round() } else { v.floor() }) as i64;
    let i = i.min(n_in as i64 - 1);
    if half { i.max(0) } else { i }
}

/// The input positions and weights (of 1024) TFLite's int8 `RESIZE_BILINEAR` reads for output
/// `x` (its reference kernel's `ResizeBilinearInteger` and
/// `ComputeInterpolationValuesInteger`), merged by position; `None` when it would read outside
/// the input.
pub fn tflite_bilinear(
    x: usize,
    n_in: usize,
    n_out: usize,
    align: bool,
    half: bool,
) -> Option<BTreeMap<i64, i64>> {
    let (x, n_in, n_out) = (x as i64, n_in as i64, n_out as i64);
    if n_in < 1 || n_out < 1 {
        return None;
    }
    let scale = if align && n_out > 1 {
        (1024 * (n_in - 1) + (n_out - 1) / 2) / (n_out - 1)
    } else {
        (1024 * n_in + n_out / 2) / n_out
    };
    let v = if half {
        x * scale + scale / 2 - 512
    } else {
        x * scale
    };
    // C's integer division truncates toward zero, as Rust's.
    let lo = (v / 1024).max(0);
    let hi = ((v + 1023) / 1024).min(n_in - 1);
    if !(0..n_in).contains(&lo) || !(0..n_in).contains(&hi) {
        return None;
    }
    let frac = v - 1024 * lo;
    Some(weights([(lo, 1024 - frac), (hi, frac)]))
}

/// The runtime's bilinear taps of output `x` as positions and weights (of 1024).
fn runtime_bilinear(
    g: &ResizeGeometry,
    axis: usize,
    x: usize,
    n_in: usize,
    n_out: usize,
) -> BTreeMap<i64, i64> {
    let (i0, i1, w) = linear_taps(coordinate(x, g.coord, g.scale[axis], n_in, n_out), n_in);
    weights([(i0 as i64, (1024 - w) as i64), (i1 as i64, w as i64)])
}

fn weights(taps: [(i64, i64); 2]) -> BTreeMap<i64, i64> {
    let mut m = BTreeMap::new();
    for (i, w) in taps {
        *m.entry(i).or_insert(0) += w;
    }
    m.retain(|_, w| *w != 0);
    m
}

/// The TFLite flags under which TFLite reads exactly what the runtime reads along both axes
/// (`sizes`: `[(n_in, n_out); 2]`), if any.
pub fn flags_for(g: &ResizeGeometry, sizes: [(usize, usize); 2]) -> Option<(bool, bool)> {
    if sizes.iter().any(|&(n_in, n_out)| n_in == 0 || n_out == 0) {
        return None;
    }
    FLAGS.into_iter().find(|&(align, half)| {
        sizes.iter().enumerate().all(|(axis, &(n_in, n_out))| {
            (0..n_out).all(|x| {
                if g.linear {
                    tflite_bilinear(x, n_in, n_out, align, half)
                        .is_some_and(|t| t == runtime_bilinear(g, axis, x, n_in, n_out))
                } else {
                    let c = coordinate(x, g.coord, g.scale[axis], n_in, n_out);
                    tflite_nearest(x, n_in, n_out, align, half)
                        == nearest_index(c, g.nearest, n_in) as i64
                }
            })
        })
    })
}

const COORD: [&str; 4] = [
    "half_pixel",
    "pytorch_half_pixel",
    "asymmetric",
    "align_corners",
];
const NEAREST: [&str; 4] = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];

impl Ex<'_, '_> {
    /// Resize: nearest as `RESIZE_NEAREST_NEIGHBOR` (a copy at the input's quantization, then
    /// an `ADD` of 0 where the output's differs), bilinear as `RESIZE_BILINEAR` (which rounds
    /// its interpolation to the input's quantization; the same `ADD` after it).
    pub(crate) fn resize(
        &mut self,
        i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        use edgeslim_runtime::ops::resize::{WEIGHT_BITS, geometry, word};
        let g = geometry(o).ok_or_else(|| refuse("resize attributes out of range"))?;
        let (x, out, en) = self.io(o)?;
        let (xs, os) = (self.shape(x), self.shape(out));
        if xs[3] != os[3] {
            return Err(refuse("input and output channels differ"));
        }
        let q = self.quant(x);
        let mut want = q.0 as f64 / self.quant(out).0 as f64;
        if g.linear {
            want /= (1u64 << (2 * WEIGHT_BITS)) as f64;
        }
        if !rescales_by(en.extra(word::M), en.extra(word::S), want) {
            return Err(refuse(
                "its rescale is not the input scale over the output's",
            ));
        }
        let sizes = [
            (xs[1] as usize, os[1] as usize),
            (xs[2] as usize, os[2] as usize),
        ];
        let (align, half) = flags_for(&g, sizes).ok_or_else(|| {
            let mode = COORD.get(g.coord as usize).copied().unwrap_or("?");
            let what = if g.linear {
                format!("bilinear resize with coordinate mode {mode}")
            } else {
                let rule = NEAREST.get(g.nearest as usize).copied().unwrap_or("?");
                format!("nearest resize with coordinate mode {mode} and rounding {rule}")
            };
            refuse(&format!(
                "{what} from {}x{} to {}x{}: TFLite's kernel reads other input positions or \
                 weights under every align_corners/half_pixel_centers setting",
                xs[1], xs[2], os[1], os[2]
            ))
        })?;
        let size = self.const_i32(format!("op{i}/size"), vec![2], &[os[1], os[2]]);
        let (code, options) = if g.linear {
            (
                op::RESIZE_BILINEAR,
                Options::ResizeBilinear {
                    align_corners: align,
                    half_pixel_centers: half,
                },
            )
        } else {
            (
                op::RESIZE_NEAREST_NEIGHBOR,
                Options::ResizeNearest {
                    align_corners: align,
                    half_pixel_centers: half,
                },
            )
        };
        let version = if half || (align && !g.linear) { 3 } else { 2 };
        self.emit_at(code, version, vec![x, size], q, out, en.act(), options);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(linear: bool, coord: u32, nearest: u32, scale: [u32; 2]) -> ResizeGeometry {
        ResizeGeometry {
            linear,
            coord,
            nearest,
            scale: [scale, scale],
        }
    }

    #[test]
    fn nearest_upsampling_by_two_maps_to_tflite_flags() {
        // ONNX asymmetric + floor (PyTorch's nearest Upsample) is TFLite's default.
        let g = geo(false, 2, 2, [2, 1]);
        assert_eq!(flags_for(&g, [(6, 12), (6, 12)]), Some((false, false)));
        // half_pixel with either rounding reads the same rows at scale 2.
        let g = geo(false, 0, 1, [2, 1]);
        assert_eq!(flags_for(&g, [(6, 12), (6, 12)]), Some((false, false)));
        let g = geo(false, 0, 0, [2, 1]);
        assert_eq!(flags_for(&g, [(6, 12), (6, 12)]), Some((false, false)));
        // ceil reads one further: no TFLite form.
        let g = geo(false, 2, 3, [2, 1]);
        assert_eq!(flags_for(&g, [(6, 12), (6, 12)]), None);
    }

    #[test]
    fn bilinear_half_pixel_by_two_is_half_pixel_centers() {
        let g = geo(true, 0, 0, [2, 1]);
        assert_eq!(flags_for(&g, [(5, 10), (7, 14)]), Some((false, true)));
        let g = geo(true, 2, 0, [2, 1]);
        assert_eq!(flags_for(&g, [(5, 10), (7, 14)]), Some((false, false)));
        let g = geo(true, 3, 0, [1, 1]);
        assert_eq!(flags_for(&g, [(5, 9), (7, 13)]), Some((true, false)));
    }

    #[test]
    fn bilinear_weights_merge_and_stay_inside() {
        // Half-pixel first row: coordinate -1/4 clamps to row 0 in both.
        let t = tflite_bilinear(0, 4, 8, false, true).expect("inside");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec![(0, 1024)]);
        let t = tflite_bilinear(3, 4, 8, false, false).expect("inside");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec![(1, 512), (2, 512)]);
    }
}
