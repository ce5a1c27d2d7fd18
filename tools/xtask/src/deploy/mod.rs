//! The firmware's model pipeline, run by `cargo xtask firmware` around the QEMU programs. The
//! host CLI does the model work (compile, the profile log's conversion, search, bundle, run);
//! this module feeds it the firmware's logs and checks what comes back.
//!
//! | module | step |
//! |---|---|
//! | [`assets`] | compile the bundled `digits-mtl` with the host CLI and cut input samples into `target/firmware-assets/` (never committed) |
//! | [`bundle`] | the `profile` program's log to a latency table (`edgeslim profile --from-log`), the additive check on it, `edgeslim search` and `bundle --from-table`; the bundle's Rust levels become the `deploy` program's `levels.rs` |
//! | [`plugin`] | the QEMU instruction-count plugin against the program's SysTick ticks |
//! | [`check`] | the `deploy` program's int8 outputs against the host CLI's (`edgeslim run --raw`), value by value |
//! | [`parse`] | the `parse` program's cost of `Model::parse` against its pin |

mod assets;
mod bundle;
mod check;
mod parse;
mod plugin;

pub use assets::{Assets, cli_binary, generate_model};
pub use bundle::{bundle, tampered_levels};
pub use check::check_deploy;
pub use parse::check_parse;
pub use plugin::plugin_cross_check;

/// The bundled model the firmware deploys.
pub const MODEL: &str = "digits-mtl";
/// The preference the bundle is searched with: the model's first task 3, the other 1.
pub const PREFER: &str = "digit=3,bold=1";
/// The bundled model whose parse cost the `parse` program measures (the largest graph).
pub const PARSE_MODEL: &str = "mcu-bench-mtl";
/// Pinned: instructions `Model::parse` may take on the Cortex-M4 for [`PARSE_MODEL`]'s blob
/// (the `parse` program; measured 2026-12-02: 1318475, 6% below the pin; see
/// docs/cortex-m.md). A change that costs more fails `cargo xtask firmware`; raise the pin
/// only with a reason.
pub const PARSE_BUDGET: u64 = 1_400_000;
/// Input samples taken from the front of the model's eval set.
pub const SAMPLES: usize = 8;
/// The Ethos-U configuration the bundle's NPU command streams are compiled for (`edgeslim
/// bundle --npu`): the Corstone-300 build of `deploy` (feature `ethos-u55`) carries them.
pub const NPU_CONFIG: &str = "ethos-u55-128";
/// The CLI's target for QEMU's Cortex-M4 logs; the table it writes is named
/// `cortex-m4-qemu-icount-25mhz-cpi1` (instructions at one per cycle at 25 MHz).
pub const TARGET: &str = "cortex-m4-qemu";
/// Instructions per SysTick tick under `-icount shift=0` (`edgeslim_firmware::icount`).
pub const INSTRUCTIONS_PER_TICK: u64 = 40;
