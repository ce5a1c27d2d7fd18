//! The firmware `profile` program's log (`firmware/edgeslim-firmware/src/bin/profile.rs`), parsed.
//!
//! The program logs through defmt; a decoder (`defmt-print`, or probe-rs on a board) turns the
//! frames into text lines. Any line format works as long as the message follows the level
//! `INFO` (`INFO  run widths ...`, `0.000123 INFO run widths ...`, `[INFO ] run ...`); lines
//! without it (file and line locations, the runner's own output) are skipped, and an `ERROR`
//! line fails the parse with the firmware's message. The messages:
//!
//! ```text
//! calibrate instructions <n> ticks <t>
//! model_hash esm-crc32:<crc>:<bytes>
//! instructions_per_tick <n> (<comment>)
//! segment <i> <name> <[u32]: width multipliers as f32 bits>
//! task <i> <name> segment <s>
//! op <i> <kind> segment <s>                                  (logs from 2026-12-03 on)
//! run widths <[u8]> mask <m> total <t> observed <t> segments <[u64]> [ops <[u64]>]
//! marked run ticks <t>
//! done
//! ```
//!
//! Every error names the log line (1-based) it is about.

use anyhow::{Result, anyhow, bail, ensure};

/// One op of the model as the log describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOp {
    /// Kind name (`Conv2d`, `FullyConnected`, ...).
    pub kind: String,
    /// Its segment.
    pub segment: usize,
}

/// One configuration the program ran, in ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRun {
    /// The log line.
    pub line: usize,
    /// Width index per segment.
    pub widths: Vec<u8>,
    /// Task mask.
    pub mask: u32,
    /// The whole inference, no observer.
    pub total: u64,
    /// The whole inference with the op timer.
    pub observed: u64,
    /// Per segment (0 for segments that did not run).
    pub segments: Vec<u64>,
    /// Per op, in model order (0 for ops that did not run); empty in logs without op lines.
    pub ops: Vec<u64>,
}

/// The `profile` program's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileLog {
    /// `esm-crc32:<crc>:<bytes>` of the model the program ran.
    pub model_hash: String,
    /// Segment name and width multipliers (f32, exactly as in the blob).
    pub segments: Vec<(String, Vec<f32>)>,
    /// Encoder stages: the first segments (`encoder_stages <n>`; 1 in logs without the line).
    pub encoder_stages: usize,
    /// Task name and its segment.
    pub tasks: Vec<(String, usize)>,
    /// The model's ops (empty in logs without op lines).
    pub ops: Vec<LogOp>,
    /// Every configuration run.
    pub runs: Vec<ProfileRun>,
    /// (instructions, ticks) of the calibration loop.
    pub calibration: (u64, u64),
    /// Ticks of the inference between the instruction-count plugin's markers.
    pub marked_ticks: Option<u64>,
    /// Instructions per tick under QEMU `-icount shift=0`, as the program states it for its
    /// board (`instructions_per_tick <n>`); absent in a log without that line.
    pub instructions_per_tick: Option<u64>,
}

/// The message of an INFO line, after the level; `Err` for an ERROR line.
fn message(line: &str) -> Result<Option<&str>> {
    for word in line.split_whitespace() {
        // `split_whitespace` yields slices of `line`: the offset of one locates the rest.
        let end = word.as_ptr() as usize - line.as_ptr() as usize + word.len();
        match word.trim_matches(['[', ']']) {
            "INFO" => {
                let rest = line[end..].trim_start();
                // `[INFO ] message`: the bracket closes after the padding.
                return Ok(Some(rest.strip_prefix(']').unwrap_or(rest).trim()));
            }
            "ERROR" => bail!("the firmware reported an error: {}", line[end..].trim()),
            _ => {}
        }
    }
    Ok(None)
}

/// `[1, 2, 3]` as numbers (also the firmware bench logs' lists, `bench::m4`).
pub(crate) fn list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| anyhow!("expected a [..] list of {what}, found `{s}`"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| anyhow!("bad number `{v}` in the {what} `{s}`"))
        })
        .collect()
}

/// One number, named `what` in the error.
pub(crate) fn num<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<T> {
    let s = s.ok_or_else(|| anyhow!("no {what}"))?;
    s.parse().map_err(|_| anyhow!("bad {what} `{s}`"))
}

/// Expect `want` as the next word.
fn key<'a>(it: &mut impl Iterator<Item = &'a str>, want: &str) -> Result<()> {
    match it.next() {
        Some(k) if k == want => Ok(()),
        other => bail!("expected `{want}`, found {other:?}"),
    }
}

/// `run widths [..] mask m total t observed t segments [..] [ops [..]]`.
fn parse_run(line: usize, r: &str) -> Result<ProfileRun> {
    let (widths, rest) = r
        .split_once(']')
        .ok_or_else(|| anyhow!("no `]` closing the widths"))?;
    let widths = list(&format!("{widths}]"), "width indices")?;
    let (head, lists) = rest
        .split_once(" segments ")
        .ok_or_else(|| anyhow!("no `segments` list"))?;
    let mut it = head.split_whitespace();
    key(&mut it, "mask")?;
    let mask = num(it.next(), "mask")?;
    key(&mut it, "total")?;
    let total = num(it.next(), "total ticks")?;
    key(&mut it, "observed")?;
    let observed = num(it.next(), "observed ticks")?;
    ensure!(it.next().is_none(), "unexpected words before `segments`");
    let (segs, ops) = match lists.split_once(" ops ") {
        Some((s, o)) => (s, list(o, "op ticks")?),
        None => (lists, Vec::new()),
    };
    Ok(ProfileRun {
        line,
        widths,
        mask,
        total,
        observed,
        segments: list(segs, "segment ticks")?,
        ops,
    })
}

impl ProfileLog {
    /// Parse a log; `name` (the file) starts every error.
    pub fn parse(name: &str, log: &str) -> Result<Self> {
        let mut p = ProfileLog::default();
        let mut calibration = None;
        let mut done = false;
        for (i, raw) in log.lines().enumerate() {
            let n = i + 1;
            let at = |e: anyhow::Error| anyhow!("{name} line {n}: {e:#}: `{}`", raw.trim());
            let Some(m) = message(raw).map_err(at)? else {
                continue;
            };
            let mut line = || -> Result<()> {
                let mut it = m.split_whitespace();
                match it.next() {
                    Some("calibrate") => {
                        key(&mut it, "instructions")?;
                        let instructions = num(it.next(), "instructions")?;
                        key(&mut it, "ticks")?;
                        calibration = Some((instructions, num(it.next(), "ticks")?));
                    }
                    Some("encoder_stages") => {
                        p.encoder_stages = num(it.next(), "encoder stages")?;
                    }
                    Some("model_hash") => {
                        p.model_hash = it.next().ok_or_else(|| anyhow!("no hash"))?.to_owned();
                    }
                    Some("segment") => {
                        let s: usize = num(it.next(), "segment index")?;
                        ensure!(s == p.segments.len(), "segment {s} out of order");
                        let name = it.next().ok_or_else(|| anyhow!("no segment name"))?;
                        let rest: Vec<&str> = it.collect();
                        let bits: Vec<u32> = list(&rest.join(" "), "width multiplier bits")?;
                        ensure!(!bits.is_empty(), "segment {name} has no widths");
                        p.segments.push((
                            name.to_owned(),
                            bits.into_iter().map(f32::from_bits).collect(),
                        ));
                    }
                    Some("task") => {
                        let t: usize = num(it.next(), "task index")?;
                        ensure!(t == p.tasks.len(), "task {t} out of order");
                        let name = it.next().ok_or_else(|| anyhow!("no task name"))?;
                        key(&mut it, "segment")?;
                        p.tasks
                            .push((name.to_owned(), num(it.next(), "task segment")?));
                    }
                    Some("op") => {
                        let o: usize = num(it.next(), "op index")?;
                        ensure!(o == p.ops.len(), "op {o} out of order");
                        let kind = it.next().ok_or_else(|| anyhow!("no op kind"))?;
                        key(&mut it, "segment")?;
                        p.ops.push(LogOp {
                            kind: kind.to_owned(),
                            segment: num(it.next(), "op segment")?,
                        });
                    }
                    Some("run") => {
                        let r = m
                            .strip_prefix("run widths ")
                            .ok_or_else(|| anyhow!("expected `run widths`"))?;
                        p.runs.push(parse_run(n, r)?);
                    }
                    Some("instructions_per_tick") => {
                        p.instructions_per_tick = Some(num(it.next(), "instructions per tick")?);
                    }
                    Some("marked") => {
                        key(&mut it, "run")?;
                        key(&mut it, "ticks")?;
                        p.marked_ticks = Some(num(it.next(), "ticks")?);
                    }
                    Some("done") => done = true,
                    _ => {}
                }
                Ok(())
            };
            line().map_err(at)?;
        }
        let what = "is this the `profile` program's log?";
        ensure!(
            !p.model_hash.is_empty(),
            "{name}: no `model_hash` line ({what})"
        );
        p.calibration =
            calibration.ok_or_else(|| anyhow!("{name}: no `calibrate` line ({what})"))?;
        ensure!(
            !p.segments.is_empty(),
            "{name}: no `segment` lines ({what})"
        );
        ensure!(!p.runs.is_empty(), "{name}: no `run` lines ({what})");
        if p.encoder_stages == 0 {
            p.encoder_stages = 1;
        }
        ensure!(
            p.encoder_stages <= p.segments.len(),
            "{name}: {} encoder stages, {} segments",
            p.encoder_stages,
            p.segments.len()
        );
        ensure!(done, "{name}: the log ends before `done` (cut short?)");
        p.check(name)?;
        Ok(p)
    }

    /// Every line agrees with the header: segment and task indices, run shapes, and each
    /// run's segment ticks equal to the sum of its op ticks.
    fn check(&self, name: &str) -> Result<()> {
        let n_seg = self.segments.len();
        for (t, (task, s)) in self.tasks.iter().enumerate() {
            ensure!(
                *s < n_seg,
                "{name}: task {t} ({task}) is computed in segment {s}, the log names {n_seg} segments"
            );
        }
        for (o, op) in self.ops.iter().enumerate() {
            ensure!(
                op.segment < n_seg,
                "{name}: op {o} ({}) is in segment {}, the log names {n_seg} segments",
                op.kind,
                op.segment
            );
        }
        for r in &self.runs {
            let at = format!("{name} line {}", r.line);
            ensure!(
                r.widths.len() == n_seg && r.segments.len() == n_seg,
                "{at}: {} width indices and {} segment counts for {n_seg} segments",
                r.widths.len(),
                r.segments.len()
            );
            for (s, (&w, (seg, ws))) in r.widths.iter().zip(&self.segments).enumerate() {
                ensure!(
                    usize::from(w) < ws.len(),
                    "{at}: width index {w} of segment {s} ({seg}), which has {} widths",
                    ws.len()
                );
            }
            ensure!(
                r.mask != 0 && u64::from(r.mask) >> self.tasks.len() == 0,
                "{at}: task mask {} for {} tasks",
                r.mask,
                self.tasks.len()
            );
            if self.ops.is_empty() {
                ensure!(
                    r.ops.is_empty(),
                    "{at}: op ticks, but the log names no ops (`op` lines)"
                );
                continue;
            }
            ensure!(
                r.ops.len() == self.ops.len(),
                "{at}: {} op ticks for the {} ops of the model",
                r.ops.len(),
                self.ops.len()
            );
            for (s, &ticks) in r.segments.iter().enumerate() {
                let sum: u64 = r
                    .ops
                    .iter()
                    .zip(&self.ops)
                    .filter(|(_, op)| op.segment == s)
                    .map(|(&t, _)| t)
                    .sum();
                ensure!(
                    sum == ticks,
                    "{at}: the ops of segment {s} ({}) add up to {sum} ticks, the segment took \
                     {ticks}",
                    self.segments[s].0
                );
            }
        }
        Ok(())
    }

    /// Decoder segments of the tasks in `mask`, in segment order.
    pub fn decoders(&self, mask: u32) -> Vec<usize> {
        let mut d: Vec<usize> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, _)| mask >> t & 1 == 1)
            .map(|(_, &(_, s))| s)
            .filter(|&s| s > 0)
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// The mask of every task.
    pub fn all_tasks(&self) -> u32 {
        (0..self.tasks.len()).fold(0, |m, t| m | 1 << t)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small log in the program's format (two segments of two widths, two tasks).
    pub(crate) const LOG: &str = "\
INFO  calibrate instructions 2000000 ticks 50001
INFO  model_hash esm-crc32:6b768a40:121648
INFO  instructions_per_tick 40 (qemu -icount shift=0, SysTick at 25 MHz)
INFO  segment 0 encoder [1048576000, 1065353216]
INFO  segment 1 digit [1056964608, 1065353216]
INFO  segment 2 bold [1065353216]
INFO  task 0 digit segment 1
INFO  task 1 bold segment 2
INFO  op 0 Conv2d segment 0
INFO  op 1 Conv2d segment 0
INFO  op 2 FullyConnected segment 1
INFO  op 3 FullyConnected segment 2
INFO  run widths [0, 0, 0] mask 3 total 100 observed 110 segments [50, 30, 20] ops [20, 30, 30, 20]
INFO  run widths [0, 1, 0] mask 3 total 120 observed 130 segments [50, 50, 20] ops [20, 30, 50, 20]
INFO  run widths [1, 0, 0] mask 3 total 200 observed 210 segments [100, 60, 40] ops [40, 60, 60, 40]
INFO  run widths [1, 1, 0] mask 3 total 240 observed 250 segments [100, 100, 40] ops [40, 60, 100, 40]
INFO  run widths [1, 1, 0] mask 1 total 200 observed 210 segments [100, 100, 0] ops [40, 60, 100, 0]
INFO  marked run ticks 241
INFO  done
";

    #[test]
    fn parses_every_line_kind() {
        let p = ProfileLog::parse("t.log", LOG).unwrap();
        assert_eq!(p.model_hash, "esm-crc32:6b768a40:121648");
        assert_eq!(p.segments[0], ("encoder".to_owned(), vec![0.25, 1.0]));
        assert_eq!(p.tasks[1], ("bold".to_owned(), 2));
        assert_eq!(p.ops[2].kind, "FullyConnected");
        assert_eq!(p.runs.len(), 5);
        assert_eq!(p.runs[4].mask, 1);
        assert_eq!(p.runs[4].ops, [40, 60, 100, 0]);
        assert_eq!(p.runs[0].line, 13);
        assert_eq!(p.calibration, (2_000_000, 50_001));
        assert_eq!(p.marked_ticks, Some(241));
        assert_eq!(p.instructions_per_tick, Some(40));
        assert_eq!(p.decoders(1), [1]);
        assert_eq!(p.decoders(3), [1, 2]);
        assert_eq!(p.all_tasks(), 3);
    }

    #[test]
    fn other_line_formats() {
        // probe-rs style (timestamp first), bracketed levels, location lines between.
        let stamped: String = LOG
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let msg = l.trim_start_matches("INFO").trim();
                if i % 2 == 0 {
                    format!("0.{i:06} INFO {msg}\n└─ profile::main @ src/bin/profile.rs:1\n")
                } else {
                    format!("[INFO ] {msg}\n")
                }
            })
            .collect();
        // The same log, but for the line numbers (location lines sit between).
        let unnumbered = |log: &str| {
            let mut p = ProfileLog::parse("t.log", log).unwrap();
            p.runs.iter_mut().for_each(|r| r.line = 0);
            p
        };
        assert_eq!(unnumbered(&stamped), unnumbered(LOG));
    }

    #[test]
    fn old_logs_without_op_lines() {
        let old: String = LOG
            .lines()
            .filter(|l| !l.contains(" op "))
            .map(|l| format!("{}\n", l.split(" ops ").next().unwrap_or(l)))
            .collect();
        let p = ProfileLog::parse("old.log", &old).unwrap();
        assert!(p.ops.is_empty());
        assert!(p.runs.iter().all(|r| r.ops.is_empty()));
    }

    /// Replace `from` by `to` in the log and parse; the error text.
    fn broken(from: &str, to: &str) -> String {
        assert!(LOG.contains(from), "{from}");
        let log = LOG.replacen(from, to, 1);
        format!("{:#}", ProfileLog::parse("b.log", &log).unwrap_err())
    }

    #[test]
    fn bad_lines_are_named() {
        let e = broken("mask 3 total 100", "mask x total 100");
        assert!(
            e.contains("b.log line 13") && e.contains("bad mask `x`"),
            "{e}"
        );
        let e = broken("segments [50, 30, 20] ops", "segments [50, 30] ops");
        assert!(
            e.contains("b.log line 13") && e.contains("2 segment counts"),
            "{e}"
        );
        let e = broken("ops [20, 30, 30, 20]", "ops [20, 31, 30, 20]");
        assert!(
            e.contains("line 13") && e.contains("segment 0 (encoder) add up to 51"),
            "{e}"
        );
        let e = broken("ops [20, 30, 30, 20]", "ops [20, 30, 30]");
        assert!(
            e.contains("line 13") && e.contains("3 op ticks for the 4 ops"),
            "{e}"
        );
        let e = broken("run widths [1, 0, 0]", "run widths [2, 0, 0]");
        assert!(
            e.contains("line 15") && e.contains("width index 2 of segment 0"),
            "{e}"
        );
        let e = broken("segment 1 digit [", "segment 2 digit [");
        assert!(e.contains("line 5") && e.contains("out of order"), "{e}");
        let e = broken(
            "op 2 FullyConnected segment 1",
            "op 2 FullyConnected segment 7",
        );
        assert!(e.contains("op 2 (FullyConnected) is in segment 7"), "{e}");
        let e = broken(
            "calibrate instructions 2000000 ticks",
            "calibrate instr 2000000 ticks",
        );
        assert!(
            e.contains("line 1") && e.contains("expected `instructions`"),
            "{e}"
        );
        let e = broken("INFO  done", "ERROR run 3: arena too small");
        assert!(
            e.contains("line 19") && e.contains("arena too small"),
            "{e}"
        );
        let e = broken("INFO  done\n", "");
        assert!(e.contains("before `done`"), "{e}");
        let e = broken("INFO  model_hash", "INFO  model");
        assert!(e.contains("no `model_hash` line"), "{e}");
        let e = format!("{:#}", ProfileLog::parse("empty.log", "").unwrap_err());
        assert!(e.contains("empty.log"), "{e}");
    }
}
