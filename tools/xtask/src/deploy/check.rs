//! Step 4: every level of the `deploy` program's log through the host CLI on the same samples
//! (`edgeslim run --raw`); every int8 value the firmware logged must equal the host's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use edgeslim_search::{Bundle, LatencyTable};

use super::SAMPLES;
use super::assets::{Assets, edgeslim};
use crate::Ctx;
use crate::cmd::run;

/// The message of a `{L} {s}` log line at level INFO.
fn info_messages(log: &str) -> impl Iterator<Item = &str> {
    log.lines()
        .filter_map(|l| l.trim_end().strip_prefix("INFO "))
        .map(str::trim_start)
}

/// `[1, 2, 3]` as numbers.
fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| anyhow!("expected a [..] list, found {s:?}"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse().map_err(|_| anyhow!("bad number {v:?} in {s:?}")))
        .collect()
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str, line: &str) -> Result<T> {
    let s = s.ok_or_else(|| anyhow!("no {what} in {line:?}"))?;
    s.parse()
        .map_err(|_| anyhow!("bad {what} {s:?} in {line:?}"))
}

/// One output the firmware logged.
#[derive(Debug, PartialEq)]
pub struct LoggedOutput {
    pub level: usize,
    pub sample: usize,
    pub name: String,
    pub argmax: usize,
    /// h, w, c
    pub shape: [usize; 3],
    /// NHWC
    pub data: Vec<i8>,
}

/// The `deploy` program's log, parsed.
#[derive(Debug, Default, PartialEq)]
pub struct DeployLog {
    /// (widths, mask) per level.
    pub levels: Vec<(Vec<u8>, u32)>,
    pub outputs: Vec<LoggedOutput>,
    pub checksum: Option<u32>,
}

impl DeployLog {
    pub fn parse(log: &str) -> Result<Self> {
        let mut d = DeployLog::default();
        for m in info_messages(log) {
            if let Some(r) = m.strip_prefix("level ") {
                let (head, rest) = r
                    .split_once(" widths ")
                    .ok_or_else(|| anyhow!("malformed {m:?}"))?;
                let l: usize = num(head.split(' ').next(), "level", m)?;
                ensure!(l == d.levels.len(), "level {l} out of order in {m:?}");
                let (widths, mask) = rest
                    .split_once(" mask ")
                    .ok_or_else(|| anyhow!("no mask in {m:?}"))?;
                d.levels
                    .push((list(widths)?, num(Some(mask.trim()), "mask", m)?));
            } else if let Some(r) = m.strip_prefix("out ") {
                let (head, data) = r
                    .split_once(" data ")
                    .ok_or_else(|| anyhow!("no data in {m:?}"))?;
                let f: Vec<&str> = head.split(' ').collect();
                ensure!(
                    f.len() == 9 && f[3] == "argmax" && f[5] == "shape",
                    "malformed {m:?}"
                );
                d.outputs.push(LoggedOutput {
                    level: num(Some(f[0]), "level", m)?,
                    sample: num(Some(f[1]), "sample", m)?,
                    name: f[2].to_owned(),
                    argmax: num(Some(f[4]), "argmax", m)?,
                    shape: [
                        num(Some(f[6]), "h", m)?,
                        num(Some(f[7]), "w", m)?,
                        num(Some(f[8]), "c", m)?,
                    ],
                    data: list(data)?,
                });
            } else if let Some(r) = m.strip_prefix("checksum ") {
                d.checksum = Some(
                    u32::from_str_radix(r.trim(), 16)
                        .map_err(|_| anyhow!("bad checksum in {m:?}"))?,
                );
            }
        }
        ensure!(!d.levels.is_empty(), "the deploy log has no levels");
        Ok(d)
    }
}

/// FNV-1a 32 over int8 values, as the firmware computes its checksum.
pub fn fnv1a(data: impl IntoIterator<Item = i8>) -> u32 {
    data.into_iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b as u8)).wrapping_mul(0x0100_0193)
    })
}

/// An int8 `.npy` array the host CLI wrote: shape and data (the project's npy reader).
pub fn read_npy_i8(path: &Path) -> Result<(Vec<usize>, Vec<i8>)> {
    match edgeslim_npy::read_npy(path)? {
        edgeslim_npy::NpyData::I8(a) => Ok((a.shape, a.data)),
        other => bail!(
            "{}: int8 data expected, found another element type (shape {:?})",
            path.display(),
            other.shape()
        ),
    }
}

/// Step 4: the deploy log's levels must be the bundle's; each goes through the host CLI on
/// the same samples, and every int8 value must be equal. The firmware's data is NHWC, the
/// CLI's NCHW (or `[c]` for 1x1).
pub fn check_deploy(ctx: &Ctx, assets: &Assets, deploy_log: &str) -> Result<()> {
    let d = DeployLog::parse(deploy_log).context("parsing the deploy program's log")?;
    let hash = LatencyTable::load(&assets.table())?.model_hash;
    let bundle_json = assets.bundle_dir().join("bundle.json");
    let b = Bundle::load(&bundle_json, &hash)
        .with_context(|| format!("reading {}", bundle_json.display()))?;
    let logged: Vec<i8> = d
        .outputs
        .iter()
        .flat_map(|o| o.data.iter().copied())
        .collect();
    ensure!(
        d.checksum == Some(fnv1a(logged)),
        "the deploy log's checksum {:08x?} does not match the outputs it logged (log incomplete?)",
        d.checksum
    );
    let bundled: Vec<(Vec<u8>, u32)> = b
        .levels
        .iter()
        .map(|l| (l.widths.clone(), l.task_mask))
        .collect();
    ensure!(
        d.levels == bundled,
        "the deploy program ran levels {:?}, the bundle has {bundled:?}",
        d.levels
    );
    let host_root = assets.dir.join("host");
    let mut compared = 0usize;
    for (l, ((widths, mask), level)) in d.levels.iter().zip(&b.levels).enumerate() {
        let spec: Vec<String> = b
            .segments
            .iter()
            .zip(&level.multipliers)
            .map(|(s, m)| format!("{}={m}", s.name))
            .collect();
        let tasks: Vec<&str> = b
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, _)| mask >> t & 1 == 1)
            .map(|(_, n)| n.as_str())
            .collect();
        let out_dir = host_root.join(format!("level{l}"));
        if out_dir.exists() {
            std::fs::remove_dir_all(&out_dir)
                .with_context(|| format!("removing {}", out_dir.display()))?;
        }
        run(edgeslim(ctx, assets)?
            .arg("run")
            .arg(assets.model())
            .arg("--input")
            .arg(assets.samples_npy())
            .arg("--output-dir")
            .arg(&out_dir)
            .arg("--raw")
            .args(["--width", &spec.join(","), "--tasks", &tasks.join(",")]))
        .with_context(|| format!("host run of level {l}"))?;
        let mut host = HostOutputs::new();
        let entries = std::fs::read_dir(&out_dir)
            .with_context(|| format!("listing {}", out_dir.display()))?;
        for e in entries {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "npy")
                && let Some(stem) = path.file_stem()
            {
                host.insert(stem.to_string_lossy().into_owned(), read_npy_i8(&path)?);
            }
        }
        let fw: Vec<&LoggedOutput> = d.outputs.iter().filter(|o| o.level == l).collect();
        compared += compare_level(l, widths, *mask, &fw, &host, SAMPLES)?;
    }
    println!(
        "deploy: {} levels x {SAMPLES} samples, {compared} outputs bit-exact with the host CLI \
         (checksum {:08x})",
        d.levels.len(),
        d.checksum.unwrap_or(0)
    );
    Ok(())
}

/// Host outputs by name: shape (`[samples, c]` or `[samples, c, h, w]`) and int8 data.
pub type HostOutputs = BTreeMap<String, (Vec<usize>, Vec<i8>)>;

/// Compare what the firmware logged for level `l` with the host's outputs of the same level,
/// value by value; the first difference is an error naming the level, sample, output and
/// value. Returns the number of outputs compared.
pub fn compare_level(
    l: usize,
    widths: &[u8],
    mask: u32,
    fw: &[&LoggedOutput],
    host: &HostOutputs,
    samples: usize,
) -> Result<usize> {
    let fw_names: BTreeSet<&str> = fw.iter().map(|o| o.name.as_str()).collect();
    let host_names: BTreeSet<&str> = host.keys().map(String::as_str).collect();
    ensure!(
        fw_names == host_names,
        "level {l}: the firmware logged outputs {fw_names:?}, the host wrote {host_names:?}"
    );
    for s in 0..samples {
        for name in &fw_names {
            let n = fw
                .iter()
                .filter(|o| o.sample == s && o.name == *name)
                .count();
            ensure!(
                n == 1,
                "level {l}: the firmware logged output {name} of sample {s} {n} times"
            );
        }
    }
    for o in fw {
        let (shape, data) = host
            .get(&o.name)
            .ok_or_else(|| anyhow!("level {l}: no host output {}", o.name))?;
        let [h, w, c] = o.shape;
        let per = h * w * c;
        ensure!(
            shape.first() == Some(&samples)
                && shape[1..].iter().product::<usize>() == per
                && o.data.len() == per,
            "level {l} output {}: host shape {shape:?}, firmware {h}x{w}x{c} with {} values, \
             for {samples} samples",
            o.name,
            o.data.len()
        );
        let host_sample = data
            .get(o.sample * per..(o.sample + 1) * per)
            .ok_or_else(|| anyhow!("level {l}: the firmware logged sample {}", o.sample))?;
        for (i, &fv) in o.data.iter().enumerate() {
            // NHWC index i -> NCHW index.
            let (y, x, ch) = (i / (w * c), i / c % w, i % c);
            let hv = host_sample[(ch * h + y) * w + x];
            if fv != hv {
                bail!(
                    "NOT BIT-EXACT: level {l} (widths {widths:?}, mask {mask:#x}) sample {} \
                     output {} value {i} (h {y}, w {x}, c {ch}): firmware {fv}, host {hv}",
                    o.sample,
                    o.name
                );
            }
        }
    }
    Ok(fw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_log_parses_and_checksums() {
        let log = "\
INFO  model digits-mtl: esm-crc32:6b768a40:121648, arena 1536 bytes
INFO  level 0 budget_us 100 widths [0, 1, 0] mask 3
INFO  out 0 0 digit argmax 1 shape 1 1 3 data [-7, 21, -21]
INFO  out 0 0 bold argmax 1 shape 1 1 2 data [-50, 60]
INFO  checksum 00000000
";
        let d = DeployLog::parse(log).unwrap();
        assert_eq!(d.levels, vec![(vec![0, 1, 0], 3)]);
        assert_eq!(d.outputs[1].name, "bold");
        assert_eq!(d.outputs[0].data, [-7, 21, -21]);
        assert_eq!(d.outputs[0].shape, [1, 1, 3]);
        assert_eq!(d.checksum, Some(0));
        assert_eq!(fnv1a([]), 0x811c_9dc5);
        assert_eq!(fnv1a([b'a' as i8]), 0xe40c_292c);
        assert!(DeployLog::parse("INFO  nothing\n").is_err());
    }

    fn out(sample: usize, name: &str, shape: [usize; 3], data: &[i8]) -> LoggedOutput {
        LoggedOutput {
            level: 0,
            sample,
            name: name.to_owned(),
            argmax: 0,
            shape,
            data: data.to_vec(),
        }
    }

    #[test]
    fn compare_names_the_first_difference() {
        // Two samples; "seg" is 2x1x2 (NHWC), the host writes it NCHW.
        let fw = [
            out(0, "cls", [1, 1, 3], &[1, 2, 3]),
            out(0, "seg", [2, 1, 2], &[10, 20, 11, 21]),
            out(1, "cls", [1, 1, 3], &[4, 5, 6]),
            out(1, "seg", [2, 1, 2], &[12, 22, 13, 23]),
        ];
        let refs: Vec<&LoggedOutput> = fw.iter().collect();
        let mut host = HostOutputs::new();
        host.insert("cls".into(), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        host.insert(
            "seg".into(),
            (vec![2, 2, 2, 1], vec![10, 11, 20, 21, 12, 13, 22, 23]),
        );
        assert_eq!(compare_level(0, &[0, 1], 3, &refs, &host, 2).unwrap(), 4);

        let mut bad = host.clone();
        if let Some((_, d)) = bad.get_mut("seg") {
            d[6] = 99; // sample 1, channel 1, h 0
        }
        let e = compare_level(0, &[0, 1], 3, &refs, &bad, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("level 0") && e.contains("sample 1") && e.contains("output seg"),
            "{e}"
        );
        assert!(e.contains("firmware 22, host 99"), "{e}");

        let mut missing = host.clone();
        missing.remove("seg");
        assert!(compare_level(0, &[0, 1], 3, &refs, &missing, 2).is_err());
        // A sample the firmware did not log.
        assert!(compare_level(0, &[0, 1], 3, &refs[..2], &host, 2).is_err());
    }

    #[test]
    fn npy_int8() {
        let dir = std::env::temp_dir().join(format!("xtask-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let header = "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = header.to_owned();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.bytes());
        b.extend([1u8, 2, 3, 255, 254, 128]);
        let p = dir.join("a.npy");
        std::fs::write(&p, &b).unwrap();
        let (shape, data) = read_npy_i8(&p).unwrap();
        assert_eq!(shape, [2, 3]);
        assert_eq!(data, [1, 2, 3, -1, -2, -128]);
        std::fs::write(&p, &b[..b.len() - 1]).unwrap();
        assert!(read_npy_i8(&p).is_err());
        // Float data is refused, not reinterpreted.
        let at = b.windows(3).position(|w| w == b"|i1").unwrap();
        b[at..at + 3].copy_from_slice(b"<f4");
        std::fs::write(&p, &b).unwrap();
        assert!(read_npy_i8(&p).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
