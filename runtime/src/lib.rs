//! # edgeslim-runtime
//!
//! A `#![no_std]`, allocation-free interpreter for int8 **slimmable multi-task** models: a
//! shared encoder plus one decoder per task, each runnable at several channel widths chosen at
//! run time, from one model blob read in place from flash, with every activation in one
//! caller-given arena planned offline.
//!
//! - [`Model`] borrows the blob and validates all of it once; bad bytes give an [`Error`].
//! - [`Interpreter`] runs it over a `&mut [u8]` arena at a [`WidthConfig`] (one width index per
//!   segment) and a [`TaskMask`] (which decoders run).
//! - Tensors are int8 NHWC, batch 1 (as TensorFlow Lite Micro and CMSIS-NN); requantization
//!   is integer-only fixed point ([`quant`]), identical on every target.
//! - The byte layout of the blob is `FORMAT.md` beside this crate's manifest; [`format`] holds
//!   its constants. With the `std` feature, [`writer`] builds blobs.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use edgeslim_runtime::{Error, Model};
//! let mut blob = edgeslim_runtime::writer::example::two_task_blob();
//! assert!(Model::parse(&blob).is_ok());
//! blob[40] ^= 0xFF; // corrupt one byte of the body
//! assert!(matches!(Model::parse(&blob), Err(Error::CrcMismatch { .. })));
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

#[cfg(all(feature = "defmt", feature = "std"))]
compile_error!("features `defmt` and `std` are for different targets: enable one of them");

pub mod error;
pub mod format;
mod interpreter;
pub mod kernels;
mod model;
pub mod ops;
pub mod quant;
pub mod width;
#[cfg(feature = "std")]
pub mod writer;

pub use error::{Error, Section};
pub use format::OpKind;
pub use interpreter::{
    Accelerator, CpuOnly, Input, Interpreter, Observer, OpData, OutputView, Outputs, run_op,
};
pub use kernels::Shape;
pub use model::{Entry, Model, OpInfo, OutputInfo, SegmentInfo, TaskInfo, TensorInfo};
pub use width::{TaskMask, WidthConfig};
