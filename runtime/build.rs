//! Kernel selection by target features at build time.
//!
//! `cfg(edgeslim_arm_dsp)`: the Arm DSP (SMLAD) kernel variants. Every ARMv7E-M core (the
//! `thumbv7em-*` targets: Cortex-M4, M7) has the DSP extension; other Arm targets (e.g.
//! `thumbv8m.main-*` for a Cortex-M33 or M55 built with `-C target-cpu=cortex-m33` or `-C
//! target-feature=+dsp`) opt in through the target feature. Reading the target here, rather than `cfg(target_feature =
//! "dsp")` in the source, picks the DSP variants on stable Rust too, where Arm target features
//! are not visible to `cfg`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgeslim_arm_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let dsp = target.starts_with("thumbv7em") || features.split(',').any(|f| f == "dsp");
    if arch == "arm" && dsp {
        println!("cargo::rustc-cfg=edgeslim_arm_dsp");
    }
}
