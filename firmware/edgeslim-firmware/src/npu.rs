//! The Corstone-300 Ethos-U55 (feature `ethos-u55`, board `mps3-an547`): the register access
//! of `edgeslim-ethos-u` at [`board::ETHOS_U55_BASE`](crate::board::ETHOS_U55_BASE), handed out
//! once.

pub use edgeslim_ethos_u::{Config, EthosU, Mmio};

use crate::board::ETHOS_U55_BASE;

/// The NPU's registers, the first time; `None` after (one driver per NPU).
pub fn registers() -> Option<Mmio> {
    crate::singleton!(NPU_REGISTERS: () = ())?;
    // SAFETY: ETHOS_U55_BASE is the 4 KiB register block of Corstone-300's Ethos-U55 (its
    // secure alias, as this firmware runs secure), 4-byte aligned, holding no Rust object; the
    // singleton above makes this the only `Mmio` for it. Under QEMU the same block is an
    // unimplemented-device window: reads return zero and writes are dropped (board.rs), so the
    // driver's probe is harmless there too.
    Some(unsafe { Mmio::new(ETHOS_U55_BASE) })
}
