//! Kernel selection by target features at build time.
//!
//! `cfg(edgeslim_arm_dsp)`: the Arm DSP (SMLAD) kernel variants. Every ARMv7E-M core (the
//! `thumbv7em-*` targets: Cortex-M4, M7) has the DSP extension; other Arm targets (e.g.
//! `thumbv8m.main-*` for a Cortex-M33 or M55 built with `-C target-cpu=cortex-m33` or `-C
//! target-feature=+dsp`) opt in through the target feature. Reading the target here, rather than `cfg(target_feature =
//! "dsp")` in the source, picks the DSP variants on stable Rust too, where Arm target features
//! are not visible to `cfg`.
//!
//! `cfg(edgeslim_arm_mve)`: the Helium (M-profile Vector Extension, integer) kernel variants,
//! for a `thumbv8m.main-*` build whose last `-C target-cpu` is `cortex-m55` or `cortex-m85`,
//! or whose target features add `+mve` (or `+mve.fp`) and the DSP extension. Rust names no
//! `mve` target feature (`CARGO_CFG_TARGET_FEATURE` never lists it), so the flags Cargo
//! passes to rustc (`CARGO_ENCODED_RUSTFLAGS`) are read instead. MVE implies the DSP
//! extension, so such a build also has `edgeslim_arm_dsp` (the kernels MVE does not cover
//! run the DSP variants).
//!
//! The decision is `kernel_cfg.rs`, which the firmware's build script includes too (its
//! `bench` program calls the DSP and Helium sets by name where they exist).

#[path = "kernel_cfg.rs"]
mod kernel_cfg;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(edgeslim_arm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(edgeslim_arm_mve)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-changed=kernel_cfg.rs");
    let (dsp, mve) = kernel_cfg::arm_kernels();
    if dsp {
        println!("cargo::rustc-cfg=edgeslim_arm_dsp");
    }
    if mve {
        println!("cargo::rustc-cfg=edgeslim_arm_mve");
    }
}
