//! `cargo xtask bench-m4`: the `bench` firmware program in QEMU (exact instruction counts of
//! the Cortex-M4 kernels), printed as a side-by-side table: edgeslim's portable variant (before
//! the DSP kernels), its Arm DSP variant (what the interpreter calls on the M4) and Arm's
//! CMSIS-NN on the same layers and data.
//!
//! CMSIS-NN is a measuring instrument, never a dependency: it is built only when
//! `CMSIS_NN_DIR` names a CMSIS-NN checkout (e.g. `CMSIS_NN_DIR=../shared/third_party/cmsis-nn`,
//! relative to the current directory), with Debian's `gcc-arm-none-eabi` (installed here when
//! missing). Without it the CMSIS-NN column says "not measured".
//!
//! `cargo xtask bench-m55`: the same program on the Cortex-M55 (`mps3-an547`, built with
//! Helium, [`boards::M55_CONFIG`]): the same layers through the portable, Arm DSP and Helium
//! (MVE) variants (and CMSIS-NN compiled for the M55, whose headers then take its MVE paths),
//! outputs equal byte for byte; the kernels only, no model bench.
//!
//! Then (bench-m4) the bundled models through the CLI, `edgeslim bench MODEL --target cortex-m4` (every
//! op of the model in QEMU, widest and narrowest, beside CMSIS-NN on the same layers): the model
//! bench lives in the CLI (`tools/cli/src/bench/m4.rs`), xtask only calls it.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::cmd::{cmd, display, on_path, run};
use crate::setup::{self, DEBIAN_RUSTC, debian_toolchain};
use crate::{Ctx, Outcome, boards, deploy};

/// The bundled models benched op by op after the kernels (`edgeslim bench --target cortex-m4`).
const MODELS: &[&str] = &["digits-mtl", "mcu-bench-mtl"];

/// Debian packages for compiling CMSIS-NN (`newlib` provides the C headers it includes).
const CMSIS_PACKAGES: &[&str] = &[
    "gcc-arm-none-eabi",
    "binutils-arm-none-eabi",
    "libnewlib-arm-none-eabi",
];

/// One `layer` line of the bench log.
#[derive(Debug, PartialEq)]
pub struct Row {
    pub name: String,
    pub macs: u64,
    pub portable: u64,
    pub dsp: u64,
    pub mve: Option<u64>,
    pub cmsis: Option<u64>,
}

pub fn bench_m4(ctx: &Ctx) -> Result<Outcome> {
    let cmsis = kernels(ctx, &[])?;
    // The models, through the host CLI the tests build.
    let cli = deploy::cli_binary(ctx)?;
    for model in MODELS {
        let mut c = cmd(&cli);
        c.current_dir(&ctx.root).args([
            "bench",
            &format!("models/{model}/model.onnx"),
            "--target",
            "cortex-m4",
        ]);
        match &cmsis {
            Some(dir) => c.env("CMSIS_NN_DIR", dir),
            None => c.env_remove("CMSIS_NN_DIR"),
        };
        println!();
        run(&mut c).with_context(|| format!("the Cortex-M4 bench of models/{model}"))?;
    }
    Ok(Outcome::Done)
}

/// The Cortex-M55 (`mps3-an547`): the kernels with the Helium column.
pub fn bench_m55(ctx: &Ctx) -> Result<Outcome> {
    let board = [
        "--no-default-features",
        "--features",
        "mps3-an547",
        "--target",
        "thumbv8m.main-none-eabihf",
    ];
    let args: Vec<&str> = board.into_iter().chain(boards::M55_CONFIG).collect();
    kernels(ctx, &args)?;
    Ok(Outcome::Done)
}

/// The `bench` program on the default board (no `board` arguments) or on the one `board`
/// names (cargo arguments), its log and table printed; returns the CMSIS-NN directory used.
fn kernels(ctx: &Ctx, board: &[&str]) -> Result<Option<PathBuf>> {
    let tc = debian_toolchain()?;
    println!("using {DEBIAN_RUSTC}: {}", tc.rustc_version);
    if !on_path("qemu-system-arm") {
        bail!("qemu-system-arm not found: run `cargo xtask setup`");
    }
    setup::defmt_print(ctx)?;
    let cmsis = match std::env::var_os("CMSIS_NN_DIR").filter(|d| !d.is_empty()) {
        Some(d) => {
            let dir = PathBuf::from(&d)
                .canonicalize()
                .with_context(|| format!("CMSIS_NN_DIR={}", PathBuf::from(&d).display()))?;
            setup::apt_install_missing(CMSIS_PACKAGES)
                .context("installing the Arm C cross compiler for CMSIS-NN")?;
            Some(dir)
        }
        None => None,
    };
    let fw = ctx.root.join("firmware");
    let mut c = ctx.cargo();
    c.current_dir(&fw)
        .env("RUSTC", DEBIAN_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("QEMU_RUN_LOG_FORMAT", "{L} {s}")
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "edgeslim-firmware",
            "--bin",
            "bench",
        ])
        .args(board);
    // RUSTFLAGS would replace the firmware's link arguments (see firmware.rs).
    c.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    match &cmsis {
        Some(dir) => c.env("CMSIS_NN_DIR", dir),
        None => c.env_remove("CMSIS_NN_DIR"),
    };
    let shown = display(&c);
    println!("$ {shown}");
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    let log = String::from_utf8_lossy(&out.stdout);
    print!("{log}");
    if !out.status.success() {
        bail!("`bench` failed in QEMU ({}): see its log above", out.status);
    }
    let rows = parse(&log)?;
    println!();
    print!("{}", table(&rows, cmsis.is_some()));
    Ok(cmsis)
}

/// The `layer` lines of a bench log (format `{L} {s}`).
pub fn parse(log: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for line in log.lines() {
        // defmt-print pads the level: `INFO  layer ...`.
        let Some(rest) = line
            .trim()
            .strip_prefix("INFO")
            .and_then(|l| l.trim_start().strip_prefix("layer "))
        else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |s: &str| crate::cmd::number(s, line);
        let (name, macs, portable, dsp, mve, cmsis) = match f.as_slice() {
            [
                name,
                "macs",
                macs,
                "portable",
                portable,
                "arm_dsp",
                dsp,
                "cmsis_nn",
                cmsis,
            ] => (name, macs, portable, dsp, None, cmsis),
            [
                name,
                "macs",
                macs,
                "portable",
                portable,
                "arm_dsp",
                dsp,
                "arm_mve",
                mve,
                "cmsis_nn",
                cmsis,
            ] => (name, macs, portable, dsp, Some(num(mve)?), cmsis),
            _ => bail!("unexpected bench line: `{line}`"),
        };
        rows.push(Row {
            name: (*name).to_owned(),
            macs: num(macs)?,
            portable: num(portable)?,
            dsp: num(dsp)?,
            mve,
            cmsis: if *cmsis == "-" {
                None
            } else {
                Some(num(cmsis)?)
            },
        });
    }
    if rows.is_empty() {
        bail!("the bench log has no `layer` lines");
    }
    Ok(rows)
}

/// The side-by-side table (Markdown), instructions and instructions per MAC; with the Helium
/// column when the rows have it ([`mve_table`]).
pub fn table(rows: &[Row], cmsis_built: bool) -> String {
    if rows.iter().any(|r| r.mve.is_some()) {
        return mve_table(rows, cmsis_built);
    }
    let per = |i: u64, macs: u64| i as f64 / macs.max(1) as f64;
    let mut s = String::from(
        "| layer | MACs | edgeslim portable (instr, /MAC) | edgeslim arm_dsp (instr, /MAC) | \
         CMSIS-NN (instr, /MAC) | arm_dsp / CMSIS-NN |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (cm, ratio) = match r.cmsis {
            Some(c) => (
                format!("{c} ({:.2})", per(c, r.macs)),
                format!("{:.2}", r.dsp as f64 / c.max(1) as f64),
            ),
            None if cmsis_built => ("missing".to_owned(), "-".to_owned()),
            None => ("not measured".to_owned(), "-".to_owned()),
        };
        s.push_str(&format!(
            "| {} | {} | {} ({:.2}) | {} ({:.2}) | {cm} | {ratio} |\n",
            r.name,
            r.macs,
            r.portable,
            per(r.portable, r.macs),
            r.dsp,
            per(r.dsp, r.macs),
        ));
    }
    s
}

/// The Cortex-M55 table: portable, Arm DSP, Helium (MVE) and CMSIS-NN, with the Helium
/// variant's count over the DSP variant's and over CMSIS-NN's.
fn mve_table(rows: &[Row], cmsis_built: bool) -> String {
    let per = |i: u64, macs: u64| i as f64 / macs.max(1) as f64;
    let mut s = String::from(
        "| layer | MACs | portable (instr, /MAC) | arm_dsp (instr, /MAC) | arm_mve (instr, /MAC) | \
         CMSIS-NN (instr, /MAC) | arm_mve / arm_dsp | arm_mve / CMSIS-NN |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let mve = r.mve.unwrap_or(0);
        let (cm, ratio) = match r.cmsis {
            Some(c) => (
                format!("{c} ({:.2})", per(c, r.macs)),
                format!("{:.2}", mve as f64 / c.max(1) as f64),
            ),
            None if cmsis_built => ("missing".to_owned(), "-".to_owned()),
            None => ("not measured".to_owned(), "-".to_owned()),
        };
        s.push_str(&format!(
            "| {} | {} | {} ({:.2}) | {} ({:.2}) | {mve} ({:.3}) | {cm} | {:.2} | {ratio} |\n",
            r.name,
            r.macs,
            r.portable,
            per(r.portable, r.macs),
            r.dsp,
            per(r.dsp, r.macs),
            per(mve, r.macs),
            mve as f64 / r.dsp.max(1) as f64,
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_tabulates_with_and_without_cmsis() {
        let log = "INFO  bench: ...\nINFO  layer pw macs 100 portable 600 arm_dsp 150 cmsis_nn 200\n\
                   INFO layer fc macs 10 portable 70 arm_dsp 20 cmsis_nn -\nINFO done\n";
        let rows = parse(log).expect("valid log");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cmsis, Some(200));
        assert_eq!(rows[1].cmsis, None);
        let t = table(&rows, false);
        assert!(
            t.contains("| pw | 100 | 600 (6.00) | 150 (1.50) | 200 (2.00) | 0.75 |"),
            "{t}"
        );
        assert!(t.contains("not measured"), "{t}");
        assert!(parse("INFO layer x macs 1 portable 2\n").is_err());
        let m55 = "INFO  layer pw macs 100 portable 600 arm_dsp 150 arm_mve 30 cmsis_nn -\n";
        let rows = parse(m55).expect("valid M55 log");
        assert_eq!(rows[0].mve, Some(30));
        let t = table(&rows, false);
        assert!(
            t.contains(
                "| pw | 100 | 600 (6.00) | 150 (1.50) | 30 (0.300) | not measured | 0.20 | - |"
            ),
            "{t}"
        );
        assert!(parse("INFO done\n").is_err());
    }
}
