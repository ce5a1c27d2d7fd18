//! Steps 2 and 3: the `profile` program's log to a latency table through the CLI (`edgeslim
//! profile --from-log`, which owns the conversion), checks on the table, then `search` and
//! `bundle --from-table` (with Vela's command streams for [`NPU_CONFIG`]); the bundle's Rust
//! levels become `levels.rs`, its `npu/` files `npu/` beside it.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use edgeslim_search::LatencyTable;
use edgeslim_search::latency::COUNTER_QEMU_ICOUNT;

use super::assets::{Assets, TABLE_TARGET, edgeslim};
use super::{INSTRUCTIONS_PER_TICK, MODEL, NPU_CONFIG, PREFER, TARGET};
use crate::Ctx;
use crate::cmd::run;

/// Worst error of the additive latency model allowed on the exact QEMU instruction-count table,
/// in percent (measured: 0.6% with per-op timing, 2026-12-03).
const ADDITIVE_WORST_PERCENT: f64 = 2.0;

/// The predicted latency of the fastest and the widest all-task configurations, microseconds.
fn extremes(t: &LatencyTable) -> Result<(f64, f64)> {
    let decoders: Vec<usize> = (1..t.segments.len()).collect();
    let narrowest = vec![0u8; t.segments.len()];
    let widest: Vec<u8> = t
        .segments
        .iter()
        .map(|s| u8::try_from(s.widths.len() - 1).unwrap_or(u8::MAX))
        .collect();
    Ok((
        t.predict(&narrowest, &decoders)?,
        t.predict(&widest, &decoders)?,
    ))
}

/// The bundle's budgets: just above the fastest configuration, a quarter and half of the way
/// to the widest, just above the widest; whole microseconds.
pub fn budgets(fastest_us: f64, widest_us: f64) -> Vec<u32> {
    let f = fastest_us.ceil() as u32 + 1;
    let w = widest_us.ceil() as u32 + 1;
    let span = w.saturating_sub(f);
    let mut b = vec![f, f + span / 4, f + span / 2, f + span];
    b.dedup();
    b
}

/// What `cargo xtask firmware` requires of the table the CLI converted from the log: QEMU's
/// icount conversion at 40 instructions per tick, per-op latencies, the additive model within
/// [`ADDITIVE_WORST_PERCENT`] of every directly timed configuration.
fn check_table(t: &LatencyTable) -> Result<()> {
    ensure!(
        t.target == TABLE_TARGET,
        "the CLI named the table {:?}, expected {TABLE_TARGET:?}",
        t.target
    );
    let c = t
        .conversion
        .as_ref()
        .context("the table states no conversion")?;
    ensure!(
        c.counter == COUNTER_QEMU_ICOUNT
            && c.instructions_per_tick == Some(INSTRUCTIONS_PER_TICK as f64),
        "the table's conversion is not QEMU icount at {INSTRUCTIONS_PER_TICK} instructions per \
         tick: {c:?}"
    );
    ensure!(!t.ops.is_empty(), "the table has no per-op latencies");
    let check = t
        .check_additive()?
        .context("the table has no directly timed configurations")?;
    let worst = check.worst_rel_error * 100.0;
    println!(
        "additive model on the icount table: {} configurations, median error {:.2}%, worst \
         {worst:.2}%",
        check.configs,
        check.median_rel_error * 100.0
    );
    ensure!(
        worst <= ADDITIVE_WORST_PERCENT,
        "the additive latency model is {worst:.2}% off on the exact icount table (bound \
         {ADDITIVE_WORST_PERCENT}%)"
    );
    Ok(())
}

/// A copy of the bundle's levels for another model (the hash's byte count and
/// `MODEL_BYTES` one higher), to check that `deploy` refuses it.
pub fn tampered_levels(levels: &str) -> Result<String> {
    let mut out = String::new();
    let mut changed = 0;
    for line in levels.lines() {
        if let Some(v) = line
            .strip_prefix("pub const MODEL_BYTES: usize = ")
            .and_then(|r| r.strip_suffix(';'))
        {
            let n: usize = v.parse().context("MODEL_BYTES")?;
            let _ = writeln!(out, "pub const MODEL_BYTES: usize = {};", n + 1);
            changed += 1;
        } else if let Some(h) = line
            .strip_prefix("pub const MODEL_HASH: &str = \"")
            .and_then(|r| r.strip_suffix("\";"))
        {
            let (head, n) = h.rsplit_once(':').context("MODEL_HASH")?;
            let n: usize = n.parse().context("MODEL_HASH")?;
            let _ = writeln!(out, "pub const MODEL_HASH: &str = \"{head}:{}\";", n + 1);
            changed += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    ensure!(
        changed == 2,
        "levels.rs has no MODEL_HASH / MODEL_BYTES to tamper with"
    );
    Ok(out)
}

/// Steps 2 and 3: convert the profile log to the table through the CLI, check it, show it
/// through the CLI's `--from-table`, search one budget and bundle four; the bundle's Rust
/// levels become `levels.rs`.
pub fn bundle(ctx: &Ctx, assets: &Assets, profile_log: &str) -> Result<()> {
    std::fs::write(assets.profile_log(), profile_log)
        .with_context(|| format!("writing {}", assets.profile_log().display()))?;
    run(edgeslim(ctx, assets)?
        .arg("profile")
        .arg(assets.model())
        .args(["--target", TARGET, "--from-log"])
        .arg(assets.profile_log())
        .arg("-o")
        .arg(assets.table()))
    .context("converting the profile program's log with the CLI")?;
    let t = LatencyTable::load(&assets.table())
        .with_context(|| format!("reading {}", assets.table().display()))?;
    check_table(&t)?;
    let from = |c: &mut Command| {
        c.arg(assets.model())
            .args(["--target", &t.target, "--from-table"])
            .arg(assets.table());
    };
    // The CLI loads and validates the table it wrote, as a user's `--from-table`.
    let mut c = edgeslim(ctx, assets)?;
    c.arg("profile");
    from(&mut c);
    c.arg("-o").arg(assets.dir.join("latency-checked.json"));
    run(&mut c).context("the CLI does not accept the icount latency table")?;
    let (fastest, widest) = extremes(&t)?;
    let budgets = budgets(fastest, widest);
    let data = ctx.root.join("models").join(MODEL).join("eval.npz");
    let mut c = edgeslim(ctx, assets)?;
    c.arg("search");
    from(&mut c);
    c.args(["--budget", &format!("{}us", budgets[budgets.len() / 2])])
        .args(["--prefer", PREFER, "--data"])
        .arg(&data);
    run(&mut c).context("search on the icount latency table")?;
    let list: Vec<String> = budgets.iter().map(|b| format!("{b}us")).collect();
    let mut c = edgeslim(ctx, assets)?;
    c.arg("bundle");
    from(&mut c);
    // With Vela's command streams for the Corstone-300 build (`--npu`): its levels.rs
    // includes them from `npu/` beside itself; the other builds' build.rs cuts them off.
    c.args(["--budgets", &list.join(",")])
        .args(["--prefer", PREFER, "--npu", NPU_CONFIG, "--data"])
        .arg(&data)
        .arg("-o")
        .arg(assets.bundle_dir());
    run(&mut c).context("bundle on the icount latency table")?;
    let rs = assets.bundle_dir().join("bundle.rs");
    std::fs::copy(&rs, assets.levels())
        .with_context(|| format!("copying {} to {}", rs.display(), assets.levels().display()))?;
    let (from, to) = (assets.bundle_dir().join("npu"), assets.npu_dir());
    for entry in std::fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, to.join(name))
                .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_span_fastest_to_widest() {
        let b = budgets(176.0, 400.0);
        assert_eq!(b.first(), Some(&177));
        assert_eq!(b.last(), Some(&401));
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        // Equal ends: one level.
        assert_eq!(budgets(10.0, 10.0), vec![11]);
    }

    #[test]
    fn tampering_changes_both_constants() {
        let src = "// x\npub const MODEL_HASH: &str = \"esm-crc32:0badf00d:99\";\n\
                   pub const MODEL_BODY_CRC: u32 = 0x0badf00d;\n\
                   pub const MODEL_BYTES: usize = 99;\n";
        let t = tampered_levels(src).unwrap();
        assert!(t.contains("\"esm-crc32:0badf00d:100\""));
        assert!(t.contains("MODEL_BYTES: usize = 100;"));
        assert!(t.contains("MODEL_BODY_CRC: u32 = 0x0badf00d;"));
        assert!(tampered_levels("pub const MODEL_HASH: &str = \"h-two\";\n").is_err());
    }

    /// A table as the CLI writes it for a QEMU log, then spoilt one way at a time.
    #[test]
    fn table_checks() {
        let json = format!(
            r#"{{"format": "edgeslim.latency/1", "model_hash": "h", "target": "{TABLE_TARGET}",
            "unit": "us", "overhead_us": 1.6,
            "segments": [{{"name": "encoder", "widths": [0.5, 1.0], "latency_us": [16.0, 32.0]}},
                         {{"name": "digit", "widths": [1.0], "latency_us": [8.0],
                           "by_encoder_us": [[8.0], [8.0]]}}],
            "configs": [{{"widths": [1, 0], "tasks": ["digit"], "latency_us": 41.6}}],
            "conversion": {{"counter": "qemu-icount", "instructions_per_tick": 40.0,
                           "cycles_per_instruction": 1.0, "clock_mhz": 25.0, "us_per_tick": 1.6}},
            "ops": [{{"index": 0, "kind": "Conv2d", "segment": "encoder", "latency_us": [16.0, 32.0]}},
                    {{"index": 1, "kind": "FullyConnected", "segment": "digit", "latency_us": [8.0],
                      "by_encoder_us": [[8.0], [8.0]]}}]}}"#
        );
        let t = LatencyTable::from_json_str("t", &json).unwrap();
        check_table(&t).unwrap();
        assert_eq!(extremes(&t).unwrap(), (1.6 + 16.0 + 8.0, 1.6 + 32.0 + 8.0));
        let mut off = t.clone();
        off.configs[0].latency_us = 50.0;
        let e = check_table(&off).unwrap_err().to_string();
        assert!(e.contains("additive"), "{e}");
        let mut no_ops = t.clone();
        no_ops.ops.clear();
        assert!(check_table(&no_ops).is_err());
        let mut named = t.clone();
        named.target = "cortex-m4".into();
        assert!(check_table(&named).is_err());
        let mut none = t;
        none.conversion = None;
        assert!(check_table(&none).is_err());
    }
}
