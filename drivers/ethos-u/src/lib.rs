//! # edgeslim-ethos-u
//!
//! A `#![no_std]`, allocation-free driver for Arm's Ethos-U55 NPU that plugs into the edgeslim
//! runtime as its [`Accelerator`](edgeslim_runtime::Accelerator): whole segments (the encoder,
//! a task's decoder) at the run's widths go to the NPU as command streams Vela compiled
//! offline; whatever the NPU cannot take is declined and the runtime's CPU kernels run it,
//! bit-exact.
//!
//! - [`Stream`]: one segment at one width configuration, compiled by Vela
//!   (`--output-format raw`): its command stream and weights in flash, the NPU memory regions
//!   it uses and the tensors copied between the runtime's arena and the NPU's scratch
//!   ([`Transfer`]). `edgeslim bundle --npu <config>` generates the table.
//! - [`EthosU`]: the driver over a [`Registers`] implementation ([`Mmio`] on hardware), the
//!   stream table and two caller-given scratch buffers. It probes the NPU once; each offer of a
//!   segment looks up the stream for the run's widths, copies the inputs in, programs and
//!   starts the NPU (soft reset, AXI set-up, `QBASE`/`QSIZE`, `BASEP`, `CMD`), polls `STATUS`
//!   with a bounded count and copies the outputs back. No NPU, no stream, a stream compiled
//!   for another NPU configuration, an error bit or a timeout: declined, counted in
//!   [`Stats`], the arena untouched for the CPU. A stream table that does not fit the arena
//!   or the buffers is an [`Error`](edgeslim_runtime::Error), never a panic.
//!
//! ```
//! use edgeslim_ethos_u::{Config, EthosU, Registers, Stream};
//!
//! /// No NPU on the bus: every register reads zero.
//! struct Absent;
//! impl Registers for Absent {
//!     fn read(&mut self, _: usize) -> u32 { 0 }
//!     fn write(&mut self, _: usize, _: u32) {}
//! }
//!
//! static STREAMS: [Stream; 0] = [];
//! let (mut scratch, mut fast) = ([0u8; 64], [0u8; 0]);
//! let npu = EthosU::new(Absent, &STREAMS, &mut scratch, &mut fast, Config::default());
//! assert!(npu.hardware().is_none(), "every offer will be declined");
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

mod driver;
pub mod payload;
pub mod regs;

pub use driver::{Config, EthosU, Hardware, Stats};
pub use regs::{AxiConfig, Mmio, Registers};

/// 16-byte alignment for command streams and weights in flash (the NPU requires it).
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

/// One buffer moved between the runtime's arena and an NPU region: the tensor at `arena`
/// (byte offset in the arena), `bytes` long, lives in NPU region `region` at byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The NPU region (Vela's base-pointer index): the stream's scratch or fast scratch region.
    pub region: u8,
    /// Byte offset in that region.
    pub offset: u32,
    /// Byte offset in the runtime's arena (the tensor's planned offset).
    pub arena: u32,
    /// Bytes (int8 NHWC at the active widths).
    pub bytes: u32,
}

/// One segment at one width configuration, compiled by Vela (`--output-format raw`).
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// The segment (0: the encoder).
    pub segment: u8,
    /// Width index of the encoder (segment 0) the stream was compiled at; for the encoder
    /// itself equal to `width`.
    pub encoder_width: u8,
    /// Width index of `segment`.
    pub width: u8,
    /// Vela's `cmd_data` as it wrote it: the `COP1` payload with the optimizer config and the
    /// NPU commands ([`payload`]). 16-byte aligned.
    pub command_stream: &'static [u8],
    /// Vela's `weight_data` (weights and biases in its encoding). 16-byte aligned.
    pub weights: &'static [u8],
    /// Vela's base-pointer region of the weights.
    pub weight_region: u8,
    /// Vela's base-pointer region of the scratch.
    pub scratch_region: u8,
    /// Vela's base-pointer region of the fast scratch; unused when `fast_scratch_bytes` is 0
    /// (Vela 5.2 then names region 0 for an Ethos-U55) or it is the scratch region.
    pub fast_scratch_region: u8,
    /// Scratch bytes the stream uses.
    pub scratch_bytes: u32,
    /// Fast scratch bytes the stream uses.
    pub fast_scratch_bytes: u32,
    /// Segment inputs copied arena -> NPU before the run.
    pub inputs: &'static [Transfer],
    /// Segment outputs copied NPU -> arena after the run.
    pub outputs: &'static [Transfer],
}
