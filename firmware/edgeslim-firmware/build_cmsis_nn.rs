//! The CMSIS-NN half of the `bench` program, built only when `CMSIS_NN_DIR` names a CMSIS-NN
//! checkout (its `Include/` and `Source/`): Arm's C kernels are a measuring instrument, never
//! part of the firmware, so without the variable nothing here runs and `bench` reports them as
//! "not measured".
//!
//! With it, `arm-none-eabi-gcc -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2
//! -DARM_MATH_DSP` (on the Cortex-M55's Helium build `-march=armv8.1-m.main+mve.fp+fp.dp
//! -mfpu=auto`, see [`build`]) (and `-DCMSIS_NN_USE_SINGLE_ROUNDING` when the headers know it: the
//! runtime's rounding) compiles the convolution, fully connected and support sources into a
//! static library, and `--cfg cmsis_nn` turns on the calls in `bench`.

use std::env;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// `mve`: the firmware is built for a core with Helium (the Cortex-M55, `runtime/build.rs`):
/// CMSIS-NN is then compiled for it too (`-march=armv8.1-m.main+mve.fp+fp.dp`, which defines
/// `__ARM_FEATURE_MVE`, so CMSIS-NN's headers select its MVE paths, `ARM_MATH_MVEI`).
pub fn build(mve: bool) -> Result<(), Box<dyn Error>> {
    println!("cargo::rustc-check-cfg=cfg(cmsis_nn)");
    println!("cargo:rerun-if-env-changed=CMSIS_NN_DIR");
    let Some(dir) = env::var_os("CMSIS_NN_DIR").filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    // Relative paths are taken from the package directory (where cargo runs build scripts).
    let dir = PathBuf::from(dir);
    let header = dir.join("Include/arm_nnfunctions.h");
    if !header.is_file() {
        return Err(format!(
            "CMSIS_NN_DIR={}: no Include/arm_nnfunctions.h there (unset it to build without \
             CMSIS-NN)",
            dir.display()
        )
        .into());
    }
    let support = fs::read_to_string(dir.join("Include/arm_nnsupportfunctions.h"))?;
    let mut b = cc::Build::new();
    b.compiler("arm-none-eabi-gcc")
        .archiver("arm-none-eabi-ar")
        .include(dir.join("Include"))
        .opt_level(2)
        .flag("-mthumb")
        .flag("-mfloat-abi=hard")
        .flag("-O2")
        .define("ARM_MATH_DSP", None)
        .warnings(false);
    if mve {
        // After cc's own `-march=armv8-m.main -mfpu=fpv5-sp-d16` for the target, which a
        // `-mcpu=cortex-m55` would conflict with: the M55's architecture with Helium (integer
        // and float) and its FPU.
        b.flag("-march=armv8.1-m.main+mve.fp+fp.dp")
            .flag("-mfpu=auto");
    } else {
        b.flag("-mcpu=cortex-m4").flag("-mfpu=fpv4-sp-d16");
    }
    if support.contains("CMSIS_NN_USE_SINGLE_ROUNDING") {
        b.define("CMSIS_NN_USE_SINGLE_ROUNDING", None);
    }
    let mut n = 0;
    // The MVE build of the depthwise wrapper calls `arm_transpose_s8` (its dilated path).
    let transpose = if mve {
        &["TransposeFunctions"][..]
    } else {
        &[]
    };
    for sub in [
        "ConvolutionFunctions",
        "FullyConnectedFunctions",
        "NNSupportFunctions",
    ]
    .iter()
    .chain(transpose)
    {
        for f in c_sources(&dir.join("Source").join(sub))? {
            b.file(f);
            n += 1;
        }
    }
    b.compile("cmsis_nn");
    println!("cargo:rustc-cfg=cmsis_nn");
    println!("cargo:rerun-if-changed={}", dir.join("Source").display());
    println!("cargo:rerun-if-changed={}", dir.join("Include").display());
    println!(
        "cargo:warning=bench: CMSIS-NN from {} ({n} sources)",
        dir.display()
    );
    Ok(())
}

/// The int8 sources of a CMSIS-NN folder (the float ones need other flags and are not called).
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".c") && !name.ends_with("_f16.c") && !name.ends_with("_f32.c") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
