//! ConvTranspose as `TRANSPOSE_CONV` (version 3: int8 per-channel with a bias; 4 with a fused
//! activation).
//!
//! Both sum, for output row `o`, input row `i` through tap `k` where `o = i * stride + k -
//! pad`, with weights `[O, KH, KW, I]`. TFLite's padding is 0 (`VALID`, any output size) or
//! the one `SAME` derives from the output size; any other leading padding is a `VALID`
//! transposed convolution to an output that many rows and columns larger and a `SLICE` that
//! drops them (a copy). TFLite's `TRANSPOSE_CONV` has no groups: a grouped one is a `SPLIT` of
//! the input's channels, one `TRANSPOSE_CONV` per group and a `CONCATENATION` (copies). It has
//! no dilation either: that is refused.

use crate::schema::{Options, Padding, op};
use crate::{Ex, ExportError};
use edgeslim_runtime::OpInfo;

type Refuse<'a> = &'a dyn Fn(&str) -> ExportError;

/// The leading padding TFLite's `TRANSPOSE_CONV` derives for `SAME` along an axis of `n_out`
/// outputs, a window of `k` and `stride` (`ComputePaddingHeightWidth` of the convolution that
/// maps the output back to the input).
fn same_pad(n_out: usize, k: usize, stride: usize) -> usize {
    let n = n_out.div_ceil(stride);
    ((n.max(1) - 1) * stride + k).saturating_sub(n_out) / 2
}

impl Ex<'_, '_> {
    pub(crate) fn conv_transpose(
        &mut self,
        i: usize,
        o: &OpInfo,
        refuse: Refuse<'_>,
    ) -> Result<(), ExportError> {
        let g = edgeslim_runtime::ops::conv_transpose::geometry(o);
        if g.dilation != [1, 1] {
            return Err(refuse("dilation (TFLite's TRANSPOSE_CONV has none)"));
        }
        let (x, out, en) = self.io(o)?;
        let (s_in, zp_in) = self.quant(x);
        let (s_out, zp_out) = self.quant(out);
        let (xs, os) = (self.shape(x), self.shape(out));
        let (in_c, out_c) = (xs[3] as usize, os[3] as usize);
        let [wo, kh, kw, wi] = o.wshape;
        let ch = self.channels(&en, out_c);
        if out_c > wo || ch.len() != out_c {
            return Err(refuse(
                "more active channels than weights or channel table entries",
            ));
        }
        let groups = g.groups.max(1);
        let (cin_g, cout_g) = (in_c / groups, out_c / groups);
        if in_c % groups != 0 || out_c % groups != 0 || cin_g > wi {
            return Err(refuse("active channels that do not split into the groups"));
        }
        let w = self.m.weights(o);
        let name = format!("op{i}");
        // Per group: the filter of its output channels over its input channels.
        let mut filters = Vec::with_capacity(groups);
        for grp in 0..groups {
            let mut data = Vec::with_capacity(cout_g * kh * kw * cin_g);
            for oc in grp * cout_g..(grp + 1) * cout_g {
                for t in 0..kh * kw {
                    for ic in 0..cin_g {
                        data.push(w.get((oc * kh * kw + t) * wi + ic).map_or(0, |&b| b as i8));
                    }
                }
            }
            let gname = if groups == 1 {
                name.clone()
            } else {
                format!("{name}/group{grp}")
            };
            filters.push(self.filter_and_bias(
                &gname,
                data,
                vec![cout_g as i32, kh as i32, kw as i32, cin_g as i32],
                0,
                &ch[grp * cout_g..(grp + 1) * cout_g],
                (s_in, s_out),
            ));
        }
        let (oh, ow) = (os[1] as usize, os[2] as usize);
        let (padding, crop) = if g.pad == [0, 0] {
            (Padding::Valid, None)
        } else if g.pad == [same_pad(oh, kh, g.stride[0]), same_pad(ow, kw, g.stride[1])] {
            (Padding::Same, None)
        } else {
            (Padding::Valid, Some(g.pad))
        };
        let act = en.act();
        let version = match Self::fused(act.0, act.1, s_out, zp_out) {
            Some(crate::schema::Activation::None) | None => 3,
            Some(_) => 4,
        };
        let stride = g.stride.map(|v| v as i32);
        let options = |act| Options::TransposeConv {
            padding,
            stride,
            act,
        };
        let full = match crop {
            Some([top, left]) => [1, os[1] + top as i32, os[2] + left as i32, os[3]],
            None => [os[0], os[1], os[2], os[3]],
        };
        let tname = self.g.tensors[out as usize].name.clone();
        let target = if crop.is_some() {
            self.temp(format!("{tname}/uncropped"), full.to_vec(), s_out, zp_out)
        } else {
            out
        };
        let mut gshape = full;
        gshape[3] = cout_g as i32;
        let shape = self.const_i32(format!("{name}/output_shape"), vec![4], &gshape);
        if groups == 1 {
            let (f, b) = filters[0];
            self.emit_clamped(
                op::TRANSPOSE_CONV,
                version,
                vec![shape, f, x, b],
                target,
                act,
                options,
            );
        } else {
            // TFLite's TRANSPOSE_CONV has one group: SPLIT the input's channels, one
            // TRANSPOSE_CONV per group, CONCATENATION of the results (copies: exact).
            let xname = self.g.tensors[x as usize].name.clone();
            let mut xshape = xs.clone();
            xshape[3] = cin_g as i32;
            let parts: Vec<i32> = (0..groups)
                .map(|grp| self.temp(format!("{xname}/group{grp}"), xshape.clone(), s_in, zp_in))
                .collect();
            let axis = self.const_i32(format!("{name}/split_axis"), vec![], &[3]);
            self.push(
                op::SPLIT,
                2,
                vec![axis, x],
                parts.clone(),
                Options::Split {
                    num_splits: groups as i32,
                },
            );
            let mut outs = Vec::with_capacity(groups);
            for (grp, (&part, &(f, b))) in parts.iter().zip(&filters).enumerate() {
                let y = self.temp(
                    format!("{tname}/group{grp}"),
                    gshape.to_vec(),
                    s_out,
                    zp_out,
                );
                self.emit_clamped(
                    op::TRANSPOSE_CONV,
                    version,
                    vec![shape, f, part, b],
                    y,
                    act,
                    options,
                );
                outs.push(y);
            }
            self.push(
                op::CONCATENATION,
                3,
                outs,
                vec![target],
                Options::Concat {
                    axis: 3,
                    act: crate::schema::Activation::None,
                },
            );
        }
        if let Some([top, left]) = crop {
            let begin = self.const_i32(
                format!("{name}/begin"),
                vec![4],
                &[0, top as i32, left as i32, 0],
            );
            let size = self.const_i32(format!("{name}/size"), vec![4], &os);
            self.push(
                op::SLICE,
                2,
                vec![target, begin, size],
                vec![out],
                Options::Slice,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::same_pad;

    #[test]
    fn same_padding_of_a_transposed_convolution() {
        // 4x4 window, stride 2, 8 -> 16: SAME pads 1 (PyTorch's padding=1).
        assert_eq!(same_pad(16, 4, 2), 1);
        // 2x2 stride 2: none.
        assert_eq!(same_pad(16, 2, 2), 0);
        // 3x3 stride 1: 1.
        assert_eq!(same_pad(8, 3, 1), 1);
    }
}
