//! A deployed bundle: the compiled model in flash, the bundle's budget levels, a static arena
//! of exactly the model's arena size.
//!
//! At load the bundle is checked against the model (`MODEL_BODY_CRC`/`MODEL_BYTES` against
//! `Model::hash_parts()`, and the hash string): levels searched for another model are refused
//! with exit code 2. Then every level runs every input sample and logs each int8 output:
//!
//! ```text
//! level <l> budget_us <b> widths <[u8]> mask <m>
//! out <level> <sample> <output name> argmax <a> shape <h> <w> <c> data <[i8], NHWC>
//! checksum <FNV-1a 32 of every logged int8 value, in log order>
//! ```
//!
//! `cargo xtask firmware` runs the same samples and levels through the host CLI
//! (`edgeslim run --raw`) and requires every value to be equal.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use edgeslim_runtime::{Input, Interpreter, TaskMask, WidthConfig};
use qemu_m4::assets::{self, ARENA_BYTES, levels};
use qemu_m4::exit;

/// FNV-1a, 32 bits.
struct Fnv(u32);

impl Fnv {
    fn add(&mut self, data: &[i8]) {
        for &b in data {
            self.0 ^= u32::from(b as u8);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

#[entry]
fn main() -> ! {
    if !assets::AVAILABLE || !assets::HAS_LEVELS {
        defmt::error!(
            "no model or no bundle was generated ({=str}); run `cargo xtask firmware`",
            assets::MISSING
        );
        exit(1);
    }
    let model = assets::model();
    let (crc, bytes) = model.hash_parts();
    defmt::info!(
        "model {=str}: esm-crc32:{=u32:08x}:{=usize}, arena {=usize} bytes",
        model.name(),
        crc,
        bytes,
        model.arena_bytes()
    );
    // The bundle check: integers first (what a bootloader would compare), then the string.
    if (crc, bytes) != (levels::MODEL_BODY_CRC, levels::MODEL_BYTES)
        || !model.matches_hash(levels::MODEL_HASH)
    {
        defmt::error!(
            "bundle refused: its levels are for model {=str} (crc {=u32:08x}, {=usize} bytes), this model is esm-crc32:{=u32:08x}:{=usize}",
            levels::MODEL_HASH,
            levels::MODEL_BODY_CRC,
            levels::MODEL_BYTES,
            crc,
            bytes
        );
        exit(2);
    }
    defmt::info!(
        "bundle accepted: {=usize} levels for {=str}",
        levels::LEVELS.len(),
        levels::MODEL_HASH
    );

    // Exactly the plan's size: the interpreter refuses anything smaller.
    let Some(arena) = cortex_m::singleton!(ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES]) else {
        defmt::error!("arena already taken");
        exit(1)
    };
    let mut interp = match Interpreter::new(&model, arena) {
        Ok(i) => i,
        Err(e) => {
            defmt::error!("interpreter: {}", e);
            exit(1)
        }
    };

    let mut sum = Fnv(0x811c_9dc5);
    for (l, (budget_us, widths, mask)) in levels::LEVELS.iter().enumerate() {
        defmt::info!(
            "level {=usize} budget_us {=u32} widths {=[u8]} mask {=u32}",
            l,
            *budget_us,
            &widths[..],
            *mask
        );
        let widths = match WidthConfig::from_indices(widths) {
            Ok(w) => w,
            Err(e) => {
                defmt::error!("level {=usize}: {}", l, e);
                exit(1)
            }
        };
        for (s, x) in assets::SAMPLES.iter().enumerate() {
            let outputs = match interp.run(Input::F32(x), &widths, TaskMask(*mask)) {
                Ok(o) => o,
                Err(e) => {
                    defmt::error!("level {=usize} sample {=usize}: {}", l, s, e);
                    exit(1)
                }
            };
            for o in outputs.iter() {
                sum.add(o.data);
                defmt::info!(
                    "out {=usize} {=usize} {=str} argmax {=usize} shape {=usize} {=usize} {=usize} data {}",
                    l,
                    s,
                    o.name,
                    o.argmax(),
                    o.shape.h,
                    o.shape.w,
                    o.shape.c,
                    o.data
                );
            }
        }
    }
    defmt::info!("checksum {=u32:08x}", sum.0);
    exit(0)
}
