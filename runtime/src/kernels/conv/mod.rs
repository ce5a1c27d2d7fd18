//! 2-D convolution (groups, depthwise with a channel multiplier, stride, padding, dilation)
//! over NHWC int8 with per-output-channel requantization: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::conv2d;
