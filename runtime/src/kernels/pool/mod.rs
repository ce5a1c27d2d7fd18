//! Max, average and global average pooling over NHWC int8: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

#[cfg(not(target_arch = "x86_64"))]
pub use portable::max_pool;
/// The variant the interpreter calls.
pub use portable::{avg_pool, global_avg_pool};
#[cfg(target_arch = "x86_64")]
pub use x86::max_pool;
