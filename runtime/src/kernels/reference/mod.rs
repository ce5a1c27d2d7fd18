//! Reference kernels: clear loops that define the results every other kernel must reproduce.
//!
//! Callers pass slices of exactly the sizes the shapes state; the interpreter checks this
//! before calling. Accumulation is int32 with wrapping adds (the compiler bounds the
//! accumulator range so that wrapping never happens for its models).

mod boundary;
mod conv;
mod elementwise;
mod fc;
mod pool;
mod softmax;

pub use boundary::{dequantize, quantize};
pub use conv::conv2d;
pub use elementwise::{add, concat};
pub use fc::fully_connected;
pub use pool::{avg_pool, global_avg_pool, max_pool};
pub use softmax::softmax;
