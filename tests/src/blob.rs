//! Blob surgery and running helpers.

use edgeslim_runtime::format::{HEADER_LEN, TABLE_ENTRY_LEN};
use edgeslim_runtime::{Error, Input, Interpreter, Model, TaskMask, WidthConfig};

/// CRC-32/ISO-HDLC (zlib's `crc32`), bit by bit: independent of the runtime's table.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Rewrite the header's body CRC (bytes 12..16) to match the body the header's length
/// (bytes 8..12) names, cut to the blob. No-op on blobs shorter than the header.
pub fn fix_crc(blob: &mut [u8]) {
    if blob.len() < HEADER_LEN {
        return;
    }
    let body_len = le32(blob, 8) as usize;
    let end = HEADER_LEN.saturating_add(body_len).min(blob.len());
    let crc = crc32(&blob[HEADER_LEN..end]);
    blob[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// `(offset, length)` of the section of `kind` (see `format::kind`) in a well-formed blob.
pub fn section(blob: &[u8], kind: u32) -> (usize, usize) {
    let n = le32(blob, 16) as usize;
    (0..n)
        .map(|i| HEADER_LEN + i * TABLE_ENTRY_LEN)
        .find(|&e| le32(blob, e) == kind)
        .map(|e| (le32(blob, e + 4) as usize, le32(blob, e + 8) as usize))
        .expect("section present")
}

/// Every combination of width indices for segments with `counts` widths each, the first
/// segment varying slowest.
pub fn width_configs(counts: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for &n in counts {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |w| {
                    let mut v = prefix.clone();
                    v.push(w);
                    v
                })
            })
            .collect();
    }
    all
}

/// Width counts of every segment of a parsed model.
pub fn model_width_counts(m: &Model<'_>) -> Vec<usize> {
    (0..m.num_segments())
        .map(|s| m.segment(s).map_or(1, |g| g.n_widths))
        .collect()
}

/// A `WidthConfig` from usize indices.
pub fn wc(widths: &[usize]) -> WidthConfig {
    let v: Vec<u8> = widths.iter().map(|&w| w as u8).collect();
    WidthConfig::from_indices(&v).expect("at most 16 segments")
}

/// Run an interpreter and copy out every output: `None` for outputs whose task did not run.
pub fn run(
    interp: &mut Interpreter<'_, '_>,
    input: &[i8],
    widths: &[usize],
    tasks: u32,
) -> Result<Vec<Option<Vec<i8>>>, Error> {
    let n = interp.model().num_outputs();
    let outs = interp.run(Input::I8(input), &wc(widths), TaskMask(tasks))?;
    Ok((0..n)
        .map(|i| outs.get(i).ok().map(|o| o.data.to_vec()))
        .collect())
}

/// Parse `blob`, run it once on a fresh arena filled with `fill`, copy out the outputs.
pub fn run_blob(
    blob: &[u8],
    input: &[i8],
    widths: &[usize],
    tasks: u32,
    fill: u8,
) -> Result<Vec<Option<Vec<i8>>>, Error> {
    let m = Model::parse(blob)?;
    let mut arena = vec![fill; m.arena_bytes()];
    let mut interp = Interpreter::new(&m, &mut arena)?;
    run(&mut interp, input, widths, tasks)
}

/// Deterministic pseudo-random int8 data.
pub fn random_i8(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8 as i8
        })
        .collect()
}
