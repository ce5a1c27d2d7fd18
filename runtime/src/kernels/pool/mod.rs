//! Max, average and global average pooling over NHWC int8: the reference (the specification)
//! and its faster variants, all giving the reference's bytes.

pub mod portable;
pub mod reference;

/// The variant the interpreter calls.
pub use portable::{avg_pool, global_avg_pool, max_pool};
