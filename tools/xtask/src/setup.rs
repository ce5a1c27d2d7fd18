//! Step 1: install what is missing, skip what is present, say what gets installed.
//!
//! - Debian packages of `docs/firmware-toolchain.md` (the thumb toolchain and QEMU for Arm and
//!   RISC-V),
//! - Python packages of `models/requirements-check.txt`,
//! - `defmt-print`, once the firmware workspace has programs whose logs need decoding.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::{cmd, on_path, output, run, succeeds};
use crate::{Ctx, Outcome, firmware};

/// Debian packages for the thumb and RISC-V cross-builds and QEMU (`qemu-system-misc` has
/// `qemu-system-riscv32`). `rust-web-llvm` provides
/// `/usr/bin/rust-lld` as a link to lld-22 without depending on it, hence `lld-22`. `gcc` builds
/// the QEMU instruction-count plugin and `binutils`' `nm` finds its marker functions.
pub const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "lld-22",
    "qemu-system-arm",
    "qemu-system-misc",
    "gcc",
    "binutils",
];
/// The Rust packages: reinstalled together when Debian's rustc is too old.
const APT_RUST_PACKAGES: &[&str] = &["rustc-web", "cargo-web", "rust-web-src", "rust-web-llvm"];

/// Debian's rustc, used for every `-Zbuild-std` build (rustup's toolchains have no rust-src).
pub const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
/// The workspace's `rust-version` is 1.95 and its edition 2024: Debian's rustc must be at
/// least this (bookworm's stale lists still offer rustc-web 1.85).
const MIN_DEBIAN_RUSTC_MINOR: u32 = 95;

pub fn setup(ctx: &Ctx) -> Result<Outcome> {
    if ctx.quick {
        println!("apt: skipped (--quick)");
    } else {
        apt_packages().context("installing the Debian packages")?;
    }
    python_packages(ctx).context("installing the Python packages")?;
    if ctx.quick {
        println!("defmt-print: skipped (--quick)");
    } else if firmware::has_programs(ctx)? {
        defmt_print(ctx).context("installing defmt-print")?;
    } else {
        println!("defmt-print: not needed yet (the firmware workspace has no programs)");
    }
    Ok(Outcome::Done)
}

// ---------------------------------------------------------------------------------------------
// Debian packages

fn apt_packages() -> Result<()> {
    if !on_path("dpkg-query") || !on_path("apt-get") {
        bail!(
            "dpkg-query/apt-get not found: automatic setup supports Debian only. Install by \
             hand the equivalents of: {}",
            APT_PACKAGES.join(" ")
        );
    }
    let mut missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !missing.contains(&"rustc-web") {
        // Installed, but maybe from stale package lists: too old for this workspace.
        let (minor, version) = debian_rustc_version()?;
        if minor < MIN_DEBIAN_RUSTC_MINOR {
            println!(
                "apt: {DEBIAN_RUSTC} is {version}, older than 1.{MIN_DEBIAN_RUSTC_MINOR}: upgrading"
            );
            for p in APT_RUST_PACKAGES {
                if !missing.contains(p) {
                    missing.push(p);
                }
            }
        }
    }
    if missing.is_empty() {
        println!("apt: all present ({})", APT_PACKAGES.join(" "));
    } else {
        println!("apt: missing {}: installing", missing.join(" "));
        let mut update = privileged(&["apt-get", "update"], &missing)?;
        run(&mut update).context("`apt-get update` failed")?;
        let mut install = vec![
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            // Wait for a concurrent apt/dpkg instead of failing at once.
            "-o",
            "DPkg::Lock::Timeout=600",
        ];
        install.extend(&missing);
        run(&mut privileged(&install, &missing)?)?;
    }
    let tc = debian_toolchain()?;
    println!("apt: thumb toolchain ready: {}", tc.rustc_version);
    Ok(())
}

/// Install those of `packages` that are missing: for commands that need more than `setup`
/// installs (`bench-m4` with CMSIS-NN needs the Arm C cross compiler).
pub fn apt_install_missing(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("apt: missing {}: installing", missing.join(" "));
    run(&mut privileged(&["apt-get", "update"], &missing)?).context("`apt-get update` failed")?;
    let mut install = vec![
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "-o",
        "DPkg::Lock::Timeout=600",
    ];
    install.extend(&missing);
    run(&mut privileged(&install, &missing)?)
}

fn dpkg_installed(package: &str) -> bool {
    output(cmd("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|s| s.trim() == "install ok installed")
}

fn is_root() -> bool {
    output(cmd("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// The apt command as root, through `sudo -n` when we are not root.
fn privileged(args: &[&str], packages: &[&str]) -> Result<Command> {
    let (program, rest) = args.split_first().context("empty command")?;
    if is_root() {
        let mut c = cmd(program);
        c.args(rest).env("DEBIAN_FRONTEND", "noninteractive");
        return Ok(c);
    }
    if on_path("sudo") && succeeds(cmd("sudo").args(["-n", "true"])) {
        // sudo resets the environment: pass DEBIAN_FRONTEND through env(1).
        let mut c = cmd("sudo");
        c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive"])
            .args(args);
        return Ok(c);
    }
    bail!(
        "this needs root, and sudo is missing or asks for a password. \
         Run as root, then re-run this command:\n  apt-get update && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {}",
        packages.join(" ")
    )
}

/// Debian's rustc as `(minor, "rustc 1.x.y (...)")`.
fn debian_rustc_version() -> Result<(u32, String)> {
    let version = output(cmd(DEBIAN_RUSTC).arg("--version"))?
        .trim()
        .to_owned();
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("cannot parse the version of {DEBIAN_RUSTC}: `{version}`"))?;
    Ok((minor, version))
}

/// The Debian toolchain the thumb builds need, checked.
pub struct DebianToolchain {
    pub rustc_version: String,
}

/// Check that `-Zbuild-std` can work: Debian's rustc, new enough, with the library source.
/// The error says how to fix it.
pub fn debian_toolchain() -> Result<DebianToolchain> {
    let fix = "run `cargo xtask setup` (it installs the Debian packages of \
               docs/firmware-toolchain.md)";
    if !on_path(DEBIAN_RUSTC) {
        bail!("{DEBIAN_RUSTC} (Debian's rustc-web) not found: {fix}");
    }
    let (minor, version) = debian_rustc_version()?;
    if minor < MIN_DEBIAN_RUSTC_MINOR {
        bail!("{DEBIAN_RUSTC} is `{version}`, older than 1.{MIN_DEBIAN_RUSTC_MINOR}: {fix}");
    }
    let sysroot = output(cmd(DEBIAN_RUSTC).args(["--print", "sysroot"]))?;
    let lock = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/Cargo.lock");
    if !lock.is_file() {
        bail!(
            "the standard library source of {DEBIAN_RUSTC} is missing ({} does not exist; \
             package rust-web-src): {fix}",
            lock.display()
        );
    }
    Ok(DebianToolchain {
        rustc_version: version,
    })
}

// ---------------------------------------------------------------------------------------------
// Python packages

fn python_packages(ctx: &Ctx) -> Result<()> {
    let rel = "models/requirements-check.txt";
    let req = ctx.root.join(rel);
    if !req.is_file() {
        println!("python: {rel} not found: nothing to install");
        return Ok(());
    }
    if !on_path("python3") {
        bail!("python3 not found (needed for {rel}): apt-get install python3 python3-pip");
    }
    // `python3 -m pip`, not `pip`: the same interpreter that runs models/check.py.
    let pip = |extra: &[&str]| {
        let mut c = cmd("python3");
        c.current_dir(&ctx.root)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args([
                "--root-user-action=ignore",
                "--no-warn-script-location",
                "-r",
                rel,
            ])
            .args(extra);
        c
    };
    let mut extra: Vec<&str> = Vec::new();
    if externally_managed()? {
        // Debian's own python3 refuses `pip install` outside a venv (PEP 668).
        if is_root() || std::env::var_os("CI").is_some() {
            println!("python: system Python is externally managed: using --break-system-packages");
            extra.push("--break-system-packages");
        } else {
            bail!(
                "python3 is Debian's externally managed Python: activate a virtualenv first \
                 (python3 -m venv .venv && . .venv/bin/activate) or set PIP_BREAK_SYSTEM_PACKAGES=1"
            );
        }
    }
    // A dry run resolves without installing: nothing listed means everything is present.
    let mut dry = pip(&extra);
    dry.arg("--dry-run");
    let plan = output(&mut dry).context("is pip installed? (apt-get install python3-pip)")?;
    match plan.lines().find_map(|l| l.strip_prefix("Would install ")) {
        None => println!("python: all packages of {rel} present"),
        Some(list) => {
            println!("python: installing {list}");
            extra.push("--quiet");
            run(&mut pip(&extra))?;
        }
    }
    Ok(())
}

/// PEP 668: a system Python (not a venv) with an EXTERNALLY-MANAGED marker.
fn externally_managed() -> Result<bool> {
    let probe = "import os, sys, sysconfig; \
                 m = os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'); \
                 print(sys.prefix == sys.base_prefix and os.path.isfile(m))";
    let out = output(cmd("python3").args(["-c", probe]))?;
    Ok(out.trim() == "True")
}

// ---------------------------------------------------------------------------------------------
// defmt-print

/// The defmt log decoder the firmware runner pipes QEMU's output through.
pub fn defmt_print(ctx: &Ctx) -> Result<()> {
    if succeeds(cmd("defmt-print").arg("--version")) {
        println!("defmt-print: present");
        return Ok(());
    }
    println!("defmt-print: installing (about 3 minutes)");
    // ^1: the decoder must match the wire format of the defmt 1.x the firmware links.
    run(ctx
        .cargo()
        .args(["install", "--locked", "defmt-print", "--version", "^1"]))?;
    if !succeeds(cmd("defmt-print").arg("--version")) {
        bail!("defmt-print was installed but is not on PATH: add $HOME/.cargo/bin to PATH");
    }
    Ok(())
}
