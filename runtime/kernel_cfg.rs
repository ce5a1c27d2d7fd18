//! Which Arm kernel variants a build of `edgeslim-runtime` has, from the environment Cargo
//! gives a build script (`runtime/build.rs`; the firmware's build script includes this file
//! too, so that its programs know which kernel sets the runtime exports).

use std::env;

/// `(dsp, mve)`: the Arm DSP (SMLAD) variants (`cfg(edgeslim_arm_dsp)`) and the Helium (MVE)
/// variants (`cfg(edgeslim_arm_mve)`) for the target being built; see `runtime/build.rs`.
pub fn arm_kernels() -> (bool, bool) {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target = env::var("TARGET").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mve = target.starts_with("thumbv8m.main") && mve_in_flags(flags.split('\x1f'));
    let dsp = target.starts_with("thumbv7em") || features.split(',').any(|f| f == "dsp") || mve;
    (arch == "arm" && dsp, arch == "arm" && mve)
}

/// Whether rustc flags (one per item, as Cargo encodes them) turn on the M-profile Vector
/// Extension: the last `target-cpu` is a core that has it, or a `target-feature` list adds it
/// (and the later lists do not remove it).
fn mve_in_flags<'a>(flags: impl Iterator<Item = &'a str>) -> bool {
    let mut cpu_mve = false;
    let mut feature_mve: Option<bool> = None;
    let mut codegen = false;
    for f in flags {
        // `-C opt=value`, `-Copt=value` or `--codegen opt=value`.
        let opt = if codegen {
            codegen = false;
            f
        } else if f == "-C" || f == "--codegen" {
            codegen = true;
            continue;
        } else if let Some(rest) = f.strip_prefix("-C") {
            rest
        } else {
            continue;
        };
        if let Some(cpu) = opt.strip_prefix("target-cpu=") {
            cpu_mve = matches!(cpu, "cortex-m55" | "cortex-m85");
        } else if let Some(list) = opt.strip_prefix("target-feature=") {
            for feat in list.split(',') {
                match feat {
                    "+mve" | "+mve.fp" => feature_mve = Some(true),
                    "-mve" => feature_mve = Some(false),
                    _ => {}
                }
            }
        }
    }
    feature_mve.unwrap_or(cpu_mve)
}
