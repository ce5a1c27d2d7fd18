//! The reference kernel: the specification every other variant in this folder reproduces
//! byte for byte.

/// `output[i] = table[input[i] + 128]` for every `i < output.len()` (`input` at least as long).
pub fn lut(input: &[i8], table: &[i8; 256], output: &mut [i8]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = table[(x as i32 + 128) as usize];
    }
}
