//! 2-D convolution (groups, depthwise with a channel multiplier, stride, padding, dilation)
//! over NHWC int8 with per-output-channel requantization: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
pub mod arm_dsp;
pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
pub use arm_dsp::conv2d;
#[cfg(not(all(target_arch = "arm", target_feature = "dsp")))]
pub use portable::conv2d;
