//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

use crate::kernels::Shape;

/// Permute the axes `(h, w, c)` of `input`: output axis `k` is input axis `perm[k]`, so the
/// output's shape is `[dims[perm[0]], dims[perm[1]], dims[perm[2]]]` and output element
/// `(o0, o1, o2)` is the input element whose axis `perm[k]` index is `ok`.
pub fn transpose(input: &[i8], in_shape: Shape, perm: [usize; 3], output: &mut [i8]) {
    let dims = [in_shape.h, in_shape.w, in_shape.c];
    let strides = [in_shape.w * in_shape.c, in_shape.c, 1];
    let od = [dims[perm[0]], dims[perm[1]], dims[perm[2]]];
    let os = [strides[perm[0]], strides[perm[1]], strides[perm[2]]];
    let mut k = 0;
    for a in 0..od[0] {
        for b in 0..od[1] {
            for cc in 0..od[2] {
                output[k] = input[a * os[0] + b * os[1] + cc * os[2]];
                k += 1;
            }
        }
    }
}
