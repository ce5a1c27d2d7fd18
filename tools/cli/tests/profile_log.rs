//! `edgeslim profile --from-log`: a log the firmware's `profile` program wrote in QEMU
//! (`tests/data/profile-qemu-m4-digits-mtl.log`, recorded by `edgeslim profile
//! models/digits-mtl.esm --target cortex-m4-qemu` on 2026-12-03) through the CLI binary.
//!
//! The log's `model_hash` line is set to the hash of `digits-mtl` as compiled now, so the test
//! keeps working when the compiler changes the blob; the model's segments, widths, tasks and
//! ops must still be the log's. No figure of the log is copied into the test: the tables are
//! checked against the log's own lines and against each other.
//!
//! To record a new log: `edgeslim compile models/digits-mtl/model.onnx -o m.esm --calib
//! models/digits-mtl/calib.npy`, then `edgeslim profile m.esm --target cortex-m4-qemu` (needs
//! `cargo xtask setup`), which prints where it kept the log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use edgeslim_search::LatencyTable;

const LOG: &str = include_str!("data/profile-qemu-m4-digits-mtl.log");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory of this test process.
fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeslim-profile-log-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `digits-mtl` compiled now, and its hash.
fn model() -> &'static (PathBuf, String) {
    static M: OnceLock<(PathBuf, String)> = OnceLock::new();
    M.get_or_init(|| {
        let dir = repo().join("models/digits-mtl");
        let c = edgeslim_compiler::compile(
            &dir.join("model.onnx"),
            &edgeslim_compiler::CompileOptions {
                calib: Some(dir.join("calib.npy")),
                ..Default::default()
            },
        )
        .unwrap();
        let m = edgeslim_runtime::Model::parse(&c.blob).unwrap();
        let hash = format!("esm-crc32:{:08x}:{}", m.body_crc(), c.blob.len());
        let path = scratch().join("digits-mtl.esm");
        std::fs::write(&path, &c.blob).unwrap();
        (path, hash)
    })
}

/// The recorded log with the hash of the model compiled now.
fn log_for_model() -> String {
    let (_, hash) = model();
    LOG.lines()
        .map(|l| {
            if l.contains("model_hash ") {
                format!("INFO  model_hash {hash}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn edgeslim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

/// `profile --from-log` of `log` with `extra` arguments: the table, or the error text.
fn convert(name: &str, log: &str, extra: &[&str]) -> Result<LatencyTable, String> {
    let dir = scratch();
    let log_path = dir.join(format!("{name}.log"));
    let out_path = dir.join(format!("{name}.json"));
    std::fs::write(&log_path, log).unwrap();
    let (model, _) = model();
    let mut args = vec![
        "profile",
        model.to_str().unwrap(),
        "--from-log",
        log_path.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = edgeslim(&args);
    if out.status.success() {
        Ok(LatencyTable::load(&out_path).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The `run` lines of a log: (widths, mask, total, segments, ops) ticks.
type Run = (Vec<u8>, u32, u64, Vec<u64>, Vec<u64>);

fn runs(log: &str) -> Vec<Run> {
    let list = |s: &str| -> Vec<u64> {
        s.trim()
            .trim_matches(['[', ']'])
            .split(',')
            .map(|v| v.trim().parse().unwrap())
            .collect()
    };
    log.lines()
        .filter_map(|l| l.split_once("run widths "))
        .map(|(_, r)| {
            let (w, rest) = r.split_once(']').unwrap();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let (segs, ops) = rest
                .split_once(" segments ")
                .unwrap()
                .1
                .split_once(" ops ")
                .unwrap();
            (
                list(&format!("{w}]"))
                    .into_iter()
                    .map(|v| v as u8)
                    .collect(),
                f[1].parse().unwrap(),
                f[3].parse().unwrap(),
                list(segs),
                list(ops),
            )
        })
        .collect()
}

#[test]
fn a_qemu_log_becomes_a_table_with_per_op_costs() {
    let log = log_for_model();
    let t = convert("qemu", &log, &["--target", "cortex-m4"]).unwrap();
    assert_eq!(t.target, "cortex-m4-qemu-icount-25mhz-cpi1");
    let c = t.conversion.as_ref().expect("the conversion is stated");
    assert_eq!(c.counter, "qemu-icount");
    assert_eq!(
        (
            c.instructions_per_tick,
            c.cycles_per_instruction,
            c.clock_mhz
        ),
        (Some(40.0), Some(1.0), 25.0)
    );
    assert_eq!(c.us_per_tick, 40.0 / 25.0);
    let cal = c.calibration.expect("the calibration is stated");
    assert!(cal.ticks.abs_diff(cal.instructions / 40) <= 1);

    let runs = runs(&log);
    let all = 3u32;
    // Every latency is a whole number of ticks, exactly: ticks * 40 / 25.
    let ticks = |us: f64| {
        let t = us * 25.0 / 40.0;
        assert!((t - t.round()).abs() < 1e-9, "{us} us is not whole ticks");
        t.round() as u64
    };
    // The encoder at width e is segment 0 of the first all-task run at e; a decoder at (e, d)
    // its segment of the all-task run with the encoder at e and itself at d.
    let run_at = |s: usize, e: u8, d: u8| {
        runs.iter()
            .find(|r| r.1 == all && r.0[0] == e && (s == 0 || r.0[s] == d))
            .unwrap()
    };
    for (e, &l) in t.segments[0].latency_us.iter().enumerate() {
        assert_eq!(ticks(l), run_at(0, e as u8, 0).3[0]);
    }
    for s in 1..t.segments.len() {
        let rows = t.segments[s].by_encoder_us.as_ref().unwrap();
        for (e, row) in rows.iter().enumerate() {
            for (d, &l) in row.iter().enumerate() {
                assert_eq!(ticks(l), run_at(s, e as u8, d as u8).3[s]);
            }
        }
        // latency_us is the mean over encoder widths.
        for (d, &l) in t.segments[s].latency_us.iter().enumerate() {
            let mean = rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64;
            assert!((l - mean).abs() < 1e-9);
        }
    }
    // Per op: one entry per op of the model, and the ops of a segment add up to it at every
    // width (and every encoder width).
    assert_eq!(t.ops.len(), runs[0].4.len());
    for (s, seg) in t.segments.iter().enumerate() {
        let ops: Vec<_> = t.ops.iter().filter(|o| o.segment == seg.name).collect();
        assert!(!ops.is_empty(), "segment {} has no ops", seg.name);
        for w in 0..seg.widths.len() {
            if s == 0 {
                let sum: u64 = ops.iter().map(|o| ticks(o.latency_us[w])).sum();
                assert_eq!(sum, ticks(seg.latency_us[w]));
            } else {
                // A decoder's latency_us is a mean over encoder widths: not whole ticks.
                let sum: f64 = ops.iter().map(|o| o.latency_us[w]).sum();
                assert!((sum - seg.latency_us[w]).abs() < 1e-9 * sum);
            }
            for (e, row) in seg.by_encoder_us.iter().flatten().enumerate() {
                let sum: u64 = ops
                    .iter()
                    .map(|o| ticks(o.by_encoder_us.as_ref().unwrap()[e][w]))
                    .sum();
                assert_eq!(sum, ticks(row[w]), "segment {} at ({e}, {w})", seg.name);
            }
        }
        // The convolutions grow with the width (their MACs do); so does each segment.
        for o in ops.iter().filter(|o| o.kind == "Conv2d") {
            assert!(
                o.latency_us.windows(2).all(|p| p[0] < p[1]),
                "op {} {:?}",
                o.index,
                o.latency_us
            );
        }
        assert!(
            seg.latency_us.windows(2).all(|p| p[0] < p[1]),
            "{}",
            seg.name
        );
    }
    // Every run is a measured configuration; the additive model predicts them closely (exact
    // counts: the observer's own clock reads are the error).
    assert_eq!(t.configs.len(), runs.len());
    for (cfg, r) in t.configs.iter().zip(&runs) {
        assert_eq!(cfg.widths, r.0);
        assert_eq!(ticks(cfg.latency_us), r.2);
    }
    let check = t.check_additive().unwrap().unwrap();
    assert!(check.worst_rel_error < 0.02, "{check:?}");

    // Another CPI and clock scale every entry by exactly cpi * 25 / f.
    let t2 = convert(
        "qemu-cpi",
        &log,
        &[
            "--target",
            "cortex-m4",
            "--clock-mhz",
            "100",
            "--cpi",
            "1.5",
        ],
    )
    .unwrap();
    assert_eq!(t2.target, "cortex-m4-qemu-icount-100mhz-cpi1.5");
    for (a, b) in t.ops.iter().zip(&t2.ops) {
        for (x, y) in a.latency_us.iter().zip(&b.latency_us) {
            assert!(
                (y - x * 1.5 * 25.0 / 100.0).abs() < 1e-9 * x.max(1.0),
                "{x} {y}"
            );
        }
    }
}

#[test]
fn a_board_log_counts_cycles_at_the_clock_given() {
    // The same log as a board would write it: its calibration loop took core cycles.
    let board: String = log_for_model()
        .lines()
        .map(|l| match l.split_once("calibrate instructions ") {
            Some((head, rest)) => {
                let n: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
                format!("{head}calibrate instructions {n} ticks {}\n", n * 3 / 2)
            }
            None => format!("{l}\n"),
        })
        .collect();
    let e = convert("board-noclock", &board, &["--target", "stm32f4"]).unwrap_err();
    assert!(e.contains("--clock-mhz"), "{e}");
    let e = convert(
        "board-cpi",
        &board,
        &["--target", "stm32f4", "--clock-mhz", "168", "--cpi", "1"],
    )
    .unwrap_err();
    assert!(e.contains("--cpi"), "{e}");
    let e = convert(
        "board-qemu",
        &board,
        &["--target", "cortex-m4-qemu", "--clock-mhz", "168"],
    )
    .unwrap_err();
    assert!(e.contains("not recorded under QEMU"), "{e}");
    let t = convert(
        "board",
        &board,
        &["--target", "stm32f4", "--clock-mhz", "168"],
    )
    .unwrap();
    assert_eq!(t.target, "stm32f4-168mhz");
    let c = t.conversion.as_ref().unwrap();
    assert_eq!((c.counter.as_str(), c.clock_mhz), ("cycles", 168.0));
    assert_eq!(c.us_per_tick, 1.0 / 168.0);
    let icount = convert("board-ref", &log_for_model(), &["--target", "cortex-m4"]).unwrap();
    // Same ticks, other conversion: cycles / 168 against instructions * 40 / 25.
    for (a, b) in icount.segments.iter().zip(&t.segments) {
        for (x, y) in a.latency_us.iter().zip(&b.latency_us) {
            assert!((x * 25.0 / 40.0 - y * 168.0).abs() < 1e-6, "{x} {y}");
        }
    }
}

/// The 1-based number of the first line of `log` containing `text`.
fn line_of(log: &str, text: &str) -> usize {
    log.lines().position(|l| l.contains(text)).unwrap() + 1
}

#[test]
fn bad_logs_are_refused_naming_the_line() {
    let log = log_for_model();
    // A run line cut short.
    let first_run = log.lines().find(|l| l.contains("run widths")).unwrap();
    let cut = first_run.split(" segments ").next().unwrap();
    let bad = log.replacen(first_run, cut, 1);
    let e = convert("cut", &bad, &[]).unwrap_err();
    let n = line_of(&bad, cut);
    assert!(
        e.contains(&format!("cut.log line {n}")) && e.contains("segments"),
        "{e}"
    );
    // Op ticks that do not add up to their segment.
    let (head, ops) = first_run.split_once(" ops [").unwrap();
    let (first, rest) = ops.split_once(',').unwrap();
    let more = format!("{head} ops [{},{rest}", first.parse::<u64>().unwrap() + 1);
    let bad = log.replacen(first_run, &more, 1);
    let e = convert("sum", &bad, &[]).unwrap_err();
    assert!(
        e.contains(&format!("sum.log line {}", line_of(&bad, &more))) && e.contains("add up to"),
        "{e}"
    );
    // Another model's log.
    let other = LOG.replace("model_hash esm-crc32:", "model_hash esm-crc32:f");
    let e = convert("other", &other, &[]).unwrap_err();
    assert!(
        e.contains("was recorded with model") && e.contains(&model().1),
        "{e}"
    );
    // Not run under -icount: SysTick on host time.
    let cal = log.lines().find(|l| l.contains("calibrate")).unwrap();
    let host = log.replacen(cal, "INFO  calibrate instructions 2000000 ticks 1234", 1);
    let e = convert("host-time", &host, &[]).unwrap_err();
    assert!(e.contains("-icount"), "{e}");
    // Cut before `done`.
    let e = convert("short", &log[..log.len() / 2], &[]).unwrap_err();
    assert!(e.contains("short.log"), "{e}");
    // The firmware's own error.
    let e = convert(
        "err",
        &format!("{log}ERROR interpreter: arena too small\n"),
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("arena too small") && e.contains("err.log line"),
        "{e}"
    );
}

#[test]
fn device_options_are_refused_elsewhere() {
    let (model, _) = model();
    let m = model.to_str().unwrap();
    let out = edgeslim(&["profile", m, "--clock-mhz", "100"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--clock-mhz applies"));
    let out = edgeslim(&["profile", m, "--target", "stm32f4"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("--from-log"), "{e}");
}

/// Without the firmware tools on PATH, `--target cortex-m4-qemu` names each and the fix.
#[test]
fn the_qemu_pipeline_names_what_is_missing() {
    let (model, _) = model();
    let empty = scratch().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgeslim"))
        .args([
            "profile",
            model.to_str().unwrap(),
            "--target",
            "cortex-m4-qemu",
        ])
        .current_dir(repo())
        .env("PATH", &empty)
        .env_remove("EDGESLIM_FIRMWARE_DIR")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for what in ["qemu-system-arm", "defmt-print", "cargo xtask setup"] {
        assert!(e.contains(what), "{what}: {e}");
    }
}
