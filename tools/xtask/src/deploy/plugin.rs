//! Exact instruction counts from the QEMU TCG plugin of `firmware/icount-plugin`, against the
//! `profile` program's SysTick ticks: one tick must be [`INSTRUCTIONS_PER_TICK`] instructions.

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use edgeslim_search::LatencyTable;

use super::INSTRUCTIONS_PER_TICK;
use super::assets::{Assets, edgeslim};
use crate::Ctx;
use crate::cmd::{cmd, output, run};

/// Slack between the plugin's count and ticks x 40: the marker blocks (a few instructions),
/// the clock reads around them and one tick of phase.
const PLUGIN_SLACK: u64 = INSTRUCTIONS_PER_TICK + 16;

/// The ticks of the inference between the plugin's markers: the `marked run ticks <t>` line
/// the `profile` program logs for this check (the rest of its log is the CLI's to read).
fn marked_ticks(log: &str) -> Result<u64> {
    let line = log
        .lines()
        .find_map(|l| l.split_once("marked run ticks ").map(|(_, t)| t.trim()))
        .context("the profile log has no `marked run ticks` line")?;
    line.parse()
        .with_context(|| format!("bad tick count `{line}` in the `marked run ticks` line"))
}

/// The plugin's `icount-plugin interval <n>` lines.
fn intervals(text: &str) -> Result<Vec<u64>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("icount-plugin interval "))
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|_| anyhow!("bad plugin line `icount-plugin interval {n}`"))
        })
        .collect()
}

/// Cross-check the tick counts with exact instruction counts: build the TCG plugin with gcc,
/// find the marker functions in the `profile` ELF with `nm`, run it under the plugin and
/// compare the plugin's intervals (the calibration loop, then the widest inference) with the
/// ticks that run logged (its calibration as the CLI reads it). Returns the two exact counts.
pub fn plugin_cross_check(ctx: &Ctx, assets: &Assets, elf: &Path) -> Result<(u64, u64)> {
    let so = assets.dir.join("icount-plugin.so");
    run(cmd("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&so)
        .arg(ctx.root.join("firmware/icount-plugin/icount.c")))
    .context("building the QEMU instruction-count plugin (needs gcc)")?;
    let syms = output(cmd("nm").arg(elf)).with_context(|| format!("nm {}", elf.display()))?;
    let addr = |name: &str| -> Result<String> {
        syms.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3 && f[2] == name).then(|| f[0].to_owned())
            })
            .ok_or_else(|| anyhow!("no symbol {name} in {}", elf.display()))
    };
    let (start, stop) = (
        addr("edgeslim_icount_start")?,
        addr("edgeslim_icount_stop")?,
    );
    let plugin_log = assets.dir.join("icount-plugin.log");
    if plugin_log.exists() {
        std::fs::remove_file(&plugin_log)?;
    }
    let mut c = cmd(ctx.root.join("firmware/qemu-run.sh"));
    c.arg(elf)
        .arg("-plugin")
        .arg(format!("{},start=0x{start},stop=0x{stop}", so.display()))
        .args(["-d", "plugin", "-D"])
        .arg(&plugin_log)
        .env("QEMU_RUN_LOG_FORMAT", "{L} {s}");
    let out = output(&mut c).context("running profile under the plugin")?;
    // The CLI reads and checks this run's log too; its table states the calibration.
    let run_log = assets.dir.join("profile-plugin-run.log");
    let run_table = assets.dir.join("latency-plugin-run.json");
    std::fs::write(&run_log, &out).with_context(|| format!("writing {}", run_log.display()))?;
    output(
        edgeslim(ctx, assets)?
            .arg("profile")
            .arg(assets.model())
            .args(["--target", super::TARGET, "--from-log"])
            .arg(&run_log)
            .arg("-o")
            .arg(&run_table),
    )
    .context("the CLI does not accept the log of the run under the plugin")?;
    let cal = LatencyTable::load(&run_table)?
        .conversion
        .and_then(|c| c.calibration)
        .context("the table of the plugin run states no calibration")?;
    let (cal_n, cal_t) = (cal.instructions, cal.ticks);
    let marked = marked_ticks(&out)?;
    let text = std::fs::read_to_string(&plugin_log)
        .with_context(|| format!("reading {}", plugin_log.display()))?;
    let counts = intervals(&text)?;
    ensure!(
        counts.len() == 2,
        "the plugin reported {} intervals, expected 2 (calibration, marked run): {text}",
        counts.len()
    );
    ensure!(
        counts[0].abs_diff(cal_n) <= PLUGIN_SLACK
            && counts[1].abs_diff(marked * INSTRUCTIONS_PER_TICK) <= PLUGIN_SLACK,
        "the plugin counted {} and {} instructions; the ticks say {} ({cal_t} ticks) and {} \
         ({marked} ticks): one tick is not {INSTRUCTIONS_PER_TICK} instructions",
        counts[0],
        counts[1],
        cal_t * INSTRUCTIONS_PER_TICK,
        marked * INSTRUCTIONS_PER_TICK
    );
    println!(
        "icount plugin: calibration loop {} instructions ({cal_t} ticks x {INSTRUCTIONS_PER_TICK} \
         = {}), widest inference {} instructions ({marked} ticks x {INSTRUCTIONS_PER_TICK} = {})",
        counts[0],
        cal_t * INSTRUCTIONS_PER_TICK,
        counts[1],
        marked * INSTRUCTIONS_PER_TICK
    );
    Ok((counts[0], counts[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_marked_run_and_the_intervals() {
        let log =
            "INFO  calibrate instructions 2000000 ticks 50000\nINFO  marked run ticks 16224\n";
        assert_eq!(marked_ticks(log).unwrap(), 16224);
        assert!(marked_ticks("INFO  done\n").is_err());
        assert!(marked_ticks("INFO  marked run ticks x\n").is_err());
        let text = "icount-plugin interval 2000008\nother\nicount-plugin interval 648969\n";
        assert_eq!(intervals(text).unwrap(), [2_000_008, 648_969]);
        assert!(intervals("icount-plugin interval -1\n").is_err());
    }
}
