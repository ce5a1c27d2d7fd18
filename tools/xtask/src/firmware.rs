//! Step 7: build the firmware workspace (`firmware/`, its own workspace) and run each of its
//! programs in QEMU through the runner of `firmware/.cargo/config.toml`; then build the real
//! boards' programs, which cannot run here, and check their size (`crate::boards`).
//!
//! A program is a binary target of a member crate, as `cargo metadata --no-deps` on
//! `firmware/Cargo.toml` lists them (the `cargo_metadata` crate; run from the root, so the
//! firmware's `.cargo/config.toml`, which only matters for builds, is not read). It passes
//! when QEMU exits 0 (the program's semihosting exit code) and, when
//! `<member>/snapshots/<name>.log` exists, when its decoded defmt log equals that file.
//! `XTASK_BLESS=1 cargo xtask firmware` rewrites the snapshots.
//!
//! Around that, the model pipeline of [`crate::deploy`]: before building, the host CLI
//! compiles the model and cuts input samples into `target/firmware-assets/` (the firmware's
//! `build.rs` reads them through `EDGESLIM_FW_ASSETS`); the `profile` program runs first and
//! its log becomes a latency table (`edgeslim profile --from-log`) and, through `edgeslim
//! bundle --from-table`, the `deploy` program's levels. After the runs, `deploy`'s outputs are compared value by value with the
//! host CLI on the same samples, and `profile`'s second log must equal its first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use cargo_metadata::{MetadataCommand, TargetKind};

use crate::cmd::{display, on_path};
use crate::deploy::{self, Assets};
use crate::setup::{DEBIAN_RUSTC, debian_toolchain};
use crate::{Ctx, Outcome, setup};

/// The program whose log becomes the latency table, and the one checked bit-exact.
const PROFILE_BIN: &str = "profile";
const DEPLOY_BIN: &str = "deploy";
/// The program whose log pins the parse cost.
const PARSE_BIN: &str = "parse";
/// The per-op model bench (`edgeslim bench --target cortex-m4`); here it runs the pipeline's
/// model at its default configurations and must exit 0. Its counts follow every kernel change:
/// never snapshotted.
const OPBENCH_BIN: &str = "opbench";

/// defmt-print's format for snapshots: level and message, no file:line that moves with edits.
const SNAPSHOT_LOG_FORMAT: &str = "{L} {s}";

/// One QEMU program of the firmware workspace.
pub struct Program {
    package: String,
    bin: String,
    member_dir: PathBuf,
}

impl Program {
    /// `cargo` arguments that build and run this program in QEMU.
    fn run_args(&self) -> [&str; 7] {
        [
            "run",
            "--quiet",
            "--release",
            "-p",
            &self.package,
            "--bin",
            &self.bin,
        ]
    }
}

pub fn firmware(ctx: &Ctx) -> Result<Outcome> {
    let fw = ctx.root.join("firmware");
    if !has_members(ctx)? {
        return Ok(Outcome::Skipped(
            "firmware/Cargo.toml has no members yet".to_owned(),
        ));
    }
    let tc = debian_toolchain()?;
    println!("using {DEBIAN_RUSTC}: {}", tc.rustc_version);
    if !on_path("qemu-system-arm") {
        bail!("qemu-system-arm not found: run `cargo xtask setup`");
    }
    setup::defmt_print(ctx)?;

    // Run from firmware/: cargo reads .cargo/config.toml from the current directory, not from
    // the manifest's.
    // RUSTFLAGS from the environment would replace (not extend) the config's rustflags and so
    // drop the link scripts: the link would fail far from the cause.
    let env_flags = ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"];
    for var in env_flags {
        if std::env::var_os(var).is_some() {
            println!(
                "note: {var} is set; ignored for the firmware (it would replace the link args)"
            );
        }
    }
    let assets = Assets::new(ctx);
    let fw_cargo = |args: &[&str]| {
        let mut c = ctx.cargo();
        c.current_dir(&fw)
            .env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("EDGESLIM_FW_ASSETS", &assets.dir)
            .args(args);
        for var in env_flags {
            c.env_remove(var);
        }
        c
    };
    let programs = programs(ctx)?;
    let model_pipeline = programs.iter().any(|p| p.bin == PROFILE_BIN)
        && programs.iter().any(|p| p.bin == DEPLOY_BIN);
    let mut profile_log = None;
    if model_pipeline {
        deploy::generate_model(ctx, &assets)?;
        let p = programs
            .iter()
            .find(|p| p.bin == PROFILE_BIN)
            .context("no profile program")?;
        let mut c = fw_cargo(&p.run_args());
        c.env("QEMU_RUN_LOG_FORMAT", SNAPSHOT_LOG_FORMAT);
        let log = run_program(&mut c, p).context("profiling the model in QEMU")?;
        let elf = firmware_target_dir(&fw)
            .join(crate::checks::THUMB_TARGET)
            .join("release")
            .join(&p.bin);
        deploy::plugin_cross_check(ctx, &assets, &elf)?;
        deploy::bundle(ctx, &assets, &log)?;
        profile_log = Some(log);
    }
    crate::cmd::run(&mut fw_cargo(&[
        "build",
        "--release",
        "--workspace",
        "--bins",
    ]))
    .context("the firmware workspace does not build")?;

    let bless = std::env::var_os("XTASK_BLESS").is_some_and(|v| v == "1");
    let mut m4_deploy_log = None;
    for p in &programs {
        let mut c = fw_cargo(&p.run_args());
        let snapshot = p
            .member_dir
            .join("snapshots")
            .join(format!("{}.log", p.bin));
        // Level and message only: what snapshots hold and what the model checks parse.
        c.env("QEMU_RUN_LOG_FORMAT", SNAPSHOT_LOG_FORMAT);
        let log = run_program(&mut c, p)?;
        if model_pipeline && p.bin == PARSE_BIN {
            deploy::check_parse(&log)?;
        }
        if let Some(first) = profile_log.as_deref() {
            if p.bin == PROFILE_BIN {
                if normalize(first) != normalize(&log) {
                    bail!(
                        "program `{PROFILE_BIN}` logged other counts on its second run: \
                         instruction counts under -icount must be exactly repeatable\n\
                         --- first\n{first}--- second\n{log}"
                    );
                }
                println!("`{PROFILE_BIN}`: second run logged the same counts as the first");
            } else if p.bin == DEPLOY_BIN {
                deploy::check_deploy(ctx, &assets, &log)?;
                crate::boards::check_memory(&log, "mps2-an386")?;
                m4_deploy_log = Some(log.clone());
                check_refusal(&fw_cargo, &assets, p)?;
            }
        }
        // The model programs' logs follow every compiler and kernel change; they are checked
        // against the host instead, never snapshotted.
        let model_program =
            model_pipeline && (p.bin == PROFILE_BIN || p.bin == DEPLOY_BIN || p.bin == OPBENCH_BIN);
        if bless && !model_program {
            std::fs::create_dir_all(snapshot.parent().context("snapshot path has no parent")?)?;
            std::fs::write(&snapshot, &log)
                .with_context(|| format!("writing {}", snapshot.display()))?;
            println!("blessed {}", snapshot.display());
        } else if snapshot.is_file() {
            let want = std::fs::read_to_string(&snapshot)
                .with_context(|| format!("reading {}", snapshot.display()))?;
            if normalize(&want) != normalize(&log) {
                bail!(
                    "program `{}` logged something else than {}:\n--- expected\n{}--- got\n{}\
                     (if the new log is right: XTASK_BLESS=1 cargo xtask firmware)",
                    p.bin,
                    snapshot.display(),
                    want,
                    log
                );
            }
            println!("`{}`: log matches {}", p.bin, snapshot.display());
        }
    }
    if model_pipeline {
        let mut logs = crate::boards::run_all(ctx, &assets, &fw_cargo)?;
        logs.push((
            "mps2-an386",
            m4_deploy_log.context("no `deploy` log from mps2-an386")?,
        ));
        let started = std::time::Instant::now();
        crate::boards::build_hardware(&fw_cargo, &firmware_target_dir(&fw), &logs)?;
        println!(
            "real boards built in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Outcome::Done)
}

/// Where cargo puts the firmware's artifacts: `CARGO_TARGET_DIR` (relative to `firmware/`, where
/// cargo runs) or `firmware/target`.
fn firmware_target_dir(fw: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => fw.join(d),
        None => fw.join("target"),
    }
}

/// `deploy` built with the levels of "another model" (the byte count off by one) must refuse
/// them at load with exit code 2; the real levels are put back and rebuilt afterwards.
fn check_refusal(
    fw_cargo: &dyn Fn(&[&str]) -> Command,
    assets: &Assets,
    p: &Program,
) -> Result<()> {
    let path = assets.levels();
    let good =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::write(&path, deploy::tampered_levels(&good)?)?;
    let mut c = fw_cargo(&p.run_args());
    c.env("QEMU_RUN_LOG_FORMAT", SNAPSHOT_LOG_FORMAT);
    let shown = display(&c);
    println!("$ {shown}   (levels for another model)");
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"));
    // Restore before judging, so a failure leaves the real levels behind.
    std::fs::write(&path, &good)?;
    let out = out?;
    let log = String::from_utf8_lossy(&out.stdout);
    print!("{log}");
    if out.status.code() != Some(2) || !log.contains("bundle refused") {
        bail!(
            "`{}` accepted levels for another model or failed otherwise ({}): it must log \
             \"bundle refused\" and exit 2",
            p.bin,
            out.status
        );
    }
    println!("`{}`: refuses levels for another model (exit 2)", p.bin);
    crate::cmd::run(&mut fw_cargo(&[
        "build",
        "--release",
        "-p",
        &p.package,
        "--bin",
        &p.bin,
    ]))
}

/// Run one program, echo its log, check its exit code.
fn run_program(c: &mut Command, p: &Program) -> Result<String> {
    let shown = display(c);
    println!("$ {shown}");
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{log}");
    match out.status.code() {
        Some(0) => Ok(log),
        Some(124) => bail!(
            "program `{}` ({}) timed out in QEMU (runner exit 124)",
            p.bin,
            p.package
        ),
        _ => bail!(
            "program `{}` ({}) failed in QEMU: {} (the semihosting exit code)",
            p.bin,
            p.package,
            out.status
        ),
    }
}

fn normalize(s: &str) -> String {
    s.lines()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Does `firmware/Cargo.toml` list any member?
pub fn has_members(ctx: &Ctx) -> Result<bool> {
    Ok(!members(ctx)?.is_empty())
}

/// Does the firmware workspace have programs to run (and so logs to decode)?
pub fn has_programs(ctx: &Ctx) -> Result<bool> {
    Ok(members(ctx)?.iter().any(|m| !m.bins.is_empty()))
}

/// One member crate of the firmware workspace.
struct Member {
    package: String,
    dir: PathBuf,
    /// Its binary targets, sorted.
    bins: Vec<String>,
}

/// The members of the firmware workspace, from `cargo metadata --no-deps`.
fn members(ctx: &Ctx) -> Result<Vec<Member>> {
    let manifest = ctx.root.join("firmware/Cargo.toml");
    if !manifest.is_file() {
        return Ok(Vec::new());
    }
    let meta = MetadataCommand::new()
        .cargo_path(&ctx.cargo)
        .manifest_path(&manifest)
        .current_dir(&ctx.root)
        .no_deps()
        .exec()
        .with_context(|| format!("`cargo metadata` of {}", manifest.display()))?;
    let mut out: Vec<Member> = meta
        .workspace_packages()
        .into_iter()
        .map(|p| {
            let mut bins: Vec<String> = p
                .targets
                .iter()
                .filter(|t| t.kind.contains(&TargetKind::Bin))
                .map(|t| t.name.clone())
                .collect();
            bins.sort();
            Member {
                package: p.name.to_string(),
                dir: p
                    .manifest_path
                    .parent()
                    .map_or_else(|| ctx.root.join("firmware"), |d| d.as_std_path().to_owned()),
                bins,
            }
        })
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

fn programs(ctx: &Ctx) -> Result<Vec<Program>> {
    Ok(members(ctx)?
        .into_iter()
        .flat_map(|m| {
            m.bins.into_iter().map(move |bin| Program {
                package: m.package.clone(),
                bin,
                member_dir: m.dir.clone(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The firmware workspace of this repository, read through `cargo metadata`: its board
    /// crate and the programs `cargo xtask firmware` runs.
    #[test]
    fn firmware_members_and_programs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("the workspace root")
            .to_path_buf();
        let ctx = Ctx {
            root: root.clone(),
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
            quick: false,
        };
        let members = members(&ctx).unwrap();
        assert!(members.iter().any(|m| m.package == "edgeslim-firmware"));
        assert!(members.iter().all(|m| m.dir.join("Cargo.toml").is_file()));
        let programs = programs(&ctx).unwrap();
        for bin in ["deploy", "profile", "parse"] {
            assert!(
                programs.iter().any(|p| p.bin == bin),
                "no `{bin}` program among {:?}",
                programs.iter().map(|p| &p.bin).collect::<Vec<_>>()
            );
        }
        // Every program is a source file of its member.
        for p in &programs {
            let dir = p.member_dir.join("src");
            assert!(
                dir.join("bin").join(format!("{}.rs", p.bin)).is_file()
                    || dir.join("bin").join(&p.bin).join("main.rs").is_file()
                    || dir.join("main.rs").is_file(),
                "{}",
                p.bin
            );
        }
        assert!(has_programs(&ctx).unwrap() && has_members(&ctx).unwrap());
    }
}
