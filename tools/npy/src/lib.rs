//! Minimal `.npy` / `.npz` reading and `.npy` writing (little-endian, C order): the project's
//! one owner of the NumPy file formats (the compiler re-exports it as `edgeslim_compiler::npy`,
//! xtask reads the CLI's outputs with it).
#![deny(missing_docs)]

use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// An n-dimensional array, C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: Vec<T>,
}

impl<T: Clone> Array<T> {
    /// An array of `shape` holding `data` (lengths must agree).
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Result<Self> {
        if shape.iter().product::<usize>() != data.len() {
            bail!("{} values do not fill shape {shape:?}", data.len());
        }
        Ok(Array { shape, data })
    }
}

/// The data of an `.npy` file, by element type.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// float32.
    F32(Array<f32>),
    /// float64.
    F64(Array<f64>),
    /// int64.
    I64(Array<i64>),
    /// int32.
    I32(Array<i32>),
    /// int8.
    I8(Array<i8>),
    /// uint8.
    U8(Array<u8>),
}

impl NpyData {
    /// Shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyData::F32(a) => &a.shape,
            NpyData::F64(a) => &a.shape,
            NpyData::I64(a) => &a.shape,
            NpyData::I32(a) => &a.shape,
            NpyData::I8(a) => &a.shape,
            NpyData::U8(a) => &a.shape,
        }
    }
    /// As float32 (float64 is narrowed); an error for integer data.
    pub fn into_f32(self) -> Result<Array<f32>> {
        match self {
            NpyData::F32(a) => Ok(a),
            NpyData::F64(a) => Ok(Array {
                shape: a.shape,
                data: a.data.iter().map(|&v| v as f32).collect(),
            }),
            other => bail!("float32 data expected, found {}", other.dtype()),
        }
    }
    /// As int64 (any integer type widened).
    pub fn into_i64(self) -> Result<Array<i64>> {
        let (shape, data): (Vec<usize>, Vec<i64>) = match self {
            NpyData::I64(a) => (a.shape, a.data),
            NpyData::I32(a) => (a.shape, a.data.iter().map(|&v| v as i64).collect()),
            NpyData::I8(a) => (a.shape, a.data.iter().map(|&v| v as i64).collect()),
            NpyData::U8(a) => (a.shape, a.data.iter().map(|&v| v as i64).collect()),
            other => bail!("integer data expected, found {}", other.dtype()),
        };
        Ok(Array { shape, data })
    }
    /// The numpy type name.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "float32",
            NpyData::F64(_) => "float64",
            NpyData::I64(_) => "int64",
            NpyData::I32(_) => "int32",
            NpyData::I8(_) => "int8",
            NpyData::U8(_) => "uint8",
        }
    }
}

fn header_field<'a>(h: &'a str, key: &str) -> Result<&'a str> {
    let k = format!("'{key}'");
    let at = h
        .find(&k)
        .ok_or_else(|| anyhow!("npy header lacks {key}"))?;
    let rest = h[at + k.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| anyhow!("bad npy header"))?
        .trim_start();
    Ok(rest)
}

/// Parse `.npy` bytes.
pub fn parse_npy(b: &[u8]) -> Result<NpyData> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        bail!("not a .npy file (bad magic)");
    }
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        if b.len() < 12 {
            bail!("truncated .npy header");
        }
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let h = std::str::from_utf8(
        b.get(start..start + hlen)
            .ok_or_else(|| anyhow!("truncated .npy header"))?,
    )
    .context("npy header is not text")?;
    let descr = header_field(h, "descr")?;
    let descr = descr
        .trim_start_matches(['\'', '"'])
        .split(['\'', '"'])
        .next()
        .unwrap_or("");
    if header_field(h, "fortran_order")?.starts_with("True") {
        bail!("Fortran-order .npy arrays are not supported");
    }
    let shape_s = header_field(h, "shape")?;
    let shape_s = shape_s
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| anyhow!("bad shape in npy header"))?;
    let shape: Vec<usize> = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| anyhow!("bad dimension {s} in npy header"))
        })
        .collect::<Result<_>>()?;
    let n: usize = shape.iter().product();
    let body = &b[start + hlen..];
    macro_rules! take {
        ($t:ty, $w:expr, $var:ident) => {{
            if body.len() < n * $w {
                bail!("truncated .npy data: {} bytes for {} values", body.len(), n);
            }
            let data: Vec<$t> = body[..n * $w]
                .chunks_exact($w)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or([0; $w])))
                .collect();
            NpyData::$var(Array { shape, data })
        }};
    }
    Ok(match descr {
        "<f4" => take!(f32, 4, F32),
        // float16 widens exactly to float32.
        "<f2" => {
            if body.len() < n * 2 {
                bail!("truncated .npy data: {} bytes for {} values", body.len(), n);
            }
            let data = body[..n * 2]
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            NpyData::F32(Array { shape, data })
        }
        "<f8" => take!(f64, 8, F64),
        "<i8" => take!(i64, 8, I64),
        "<i4" => take!(i32, 4, I32),
        "|i1" => take!(i8, 1, I8),
        "|u1" => take!(u8, 1, U8),
        // Fixed-width byte strings (`np.bytes_`): bytes, with the width as a last axis.
        d if d
            .strip_prefix("|S")
            .is_some_and(|w| w.parse::<usize>().is_ok()) =>
        {
            let w: usize = d[2..].parse().unwrap_or(0);
            let len = n
                .checked_mul(w)
                .ok_or_else(|| anyhow!("npy byte-string array too large"))?;
            if body.len() < len {
                bail!("truncated .npy data: {} bytes for {len}", body.len());
            }
            let mut shape = shape;
            shape.push(w);
            NpyData::U8(Array {
                shape,
                data: body[..len].to_vec(),
            })
        }
        d => {
            bail!(
                "unsupported .npy element type {d} (float16, float32, float64, int64, int32, \
                 int8, uint8, fixed-width bytes)"
            )
        }
    })
}

/// Read an `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyData> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_npy(&b).with_context(|| format!("{}", path.display()))
}

/// Read a float32 (or float64) `.npy` file.
pub fn read_f32(path: &Path) -> Result<Array<f32>> {
    read_npy(path)?
        .into_f32()
        .with_context(|| format!("{}", path.display()))
}

fn npy_bytes(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    out
}

/// Write a float32 `.npy` file.
pub fn write_f32(path: &Path, a: &Array<f32>) -> Result<()> {
    let body: Vec<u8> = a.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<f4", &a.shape, &body))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Write an int8 `.npy` file.
pub fn write_i8(path: &Path, a: &Array<i8>) -> Result<()> {
    let body: Vec<u8> = a.data.iter().map(|&v| v as u8).collect();
    std::fs::write(path, npy_bytes("|i1", &a.shape, &body))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn u16le(b: &[u8], o: usize) -> Result<usize> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
        .ok_or_else(|| anyhow!("truncated zip"))
}
fn u32le(b: &[u8], o: usize) -> Result<usize> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or_else(|| anyhow!("truncated zip"))
}
fn u64le(b: &[u8], o: usize) -> Result<usize> {
    b.get(o..o + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])) as usize)
        .ok_or_else(|| anyhow!("truncated zip"))
}

/// Read every array of an `.npz` file (stored or deflated zip, as `np.savez[_compressed]`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyData>> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_npz(&b).with_context(|| format!("{}", path.display()))
}

/// Parse `.npz` bytes.
pub fn parse_npz(b: &[u8]) -> Result<BTreeMap<String, NpyData>> {
    parse_npz_entries(b, |_| true)
}

/// Parse the arrays of `.npz` bytes named in `keys` (others, pickled objects among them, are
/// not read); an error names a key that is missing.
pub fn parse_npz_only(b: &[u8], keys: &[&str]) -> Result<BTreeMap<String, NpyData>> {
    let out = parse_npz_entries(b, |k| keys.contains(&k))?;
    if let Some(k) = keys.iter().find(|k| !out.contains_key(**k)) {
        bail!("no array {k:?}");
    }
    Ok(out)
}

fn parse_npz_entries(b: &[u8], keep: impl Fn(&str) -> bool) -> Result<BTreeMap<String, NpyData>> {
    let eocd = (0..b.len().saturating_sub(21))
        .rev()
        .find(|&i| b[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| anyhow!("not a zip/npz file"))?;
    let mut n = u16le(b, eocd + 10)?;
    let mut cd = u32le(b, eocd + 16)?;
    if (n == 0xFFFF || cd == 0xFFFF_FFFF)
        && eocd >= 20
        && b[eocd - 20..eocd - 16] == [0x50, 0x4b, 0x06, 0x07]
    {
        let z = u64le(b, eocd - 12)?;
        n = u64le(b, z + 32)?;
        cd = u64le(b, z + 48)?;
    }
    let mut out = BTreeMap::new();
    let mut p = cd;
    for _ in 0..n {
        if u32le(b, p)? != 0x0201_4b50 {
            bail!("bad zip central directory");
        }
        let method = u16le(b, p + 10)?;
        let mut csize = u32le(b, p + 20)?;
        let mut usize_ = u32le(b, p + 24)?;
        let nlen = u16le(b, p + 28)?;
        let xlen = u16le(b, p + 30)?;
        let clen = u16le(b, p + 32)?;
        let mut local = u32le(b, p + 42)?;
        let name = String::from_utf8_lossy(
            b.get(p + 46..p + 46 + nlen)
                .ok_or_else(|| anyhow!("truncated zip"))?,
        )
        .into_owned();
        // zip64 extra field.
        let mut x = p + 46 + nlen;
        let xend = x + xlen;
        while x + 4 <= xend {
            let id = u16le(b, x)?;
            let sz = u16le(b, x + 2)?;
            if id == 1 {
                let mut q = x + 4;
                if usize_ == 0xFFFF_FFFF {
                    usize_ = u64le(b, q)?;
                    q += 8;
                }
                if csize == 0xFFFF_FFFF {
                    csize = u64le(b, q)?;
                    q += 8;
                }
                if local == 0xFFFF_FFFF {
                    local = u64le(b, q)?;
                }
            }
            x += 4 + sz;
        }
        p = xend + clen;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        if !keep(&key) {
            continue;
        }
        let lnlen = u16le(b, local + 26)?;
        let lxlen = u16le(b, local + 28)?;
        let start = local + 30 + lnlen + lxlen;
        let raw = b
            .get(start..start + csize)
            .ok_or_else(|| anyhow!("truncated zip entry {name}"))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => {
                let mut v = Vec::with_capacity(usize_);
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut v)
                    .with_context(|| format!("inflating {name}"))?;
                v
            }
            m => bail!("zip entry {name}: compression method {m} not supported"),
        };
        out.insert(
            key,
            parse_npy(&data).with_context(|| format!("entry {name}"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips() {
        let a = Array::new(vec![2, 3], vec![1.0f32, -2.5, 3.0, 0.0, 7.25, -1.0])
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = std::env::temp_dir().join(format!("npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let p = dir.join("a.npy");
        write_f32(&p, &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_f32(&p).unwrap_or_else(|e| panic!("{e}")), a);
        let b = Array::new(vec![4], vec![-128i8, -1, 0, 127]).unwrap_or_else(|e| panic!("{e}"));
        write_i8(&p, &b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_npy(&p).unwrap_or_else(|e| panic!("{e}")),
            NpyData::I8(b)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// numpy's fixed-width bytes (`|S5`, what `np.savez` makes of a Python `bytes`) read as
    /// bytes with the width as the last axis, trailing zero bytes kept.
    #[test]
    fn byte_strings_read_as_bytes() {
        let a = parse_npy(&npy_bytes("|S5", &[], b"COP1\0"));
        assert_eq!(
            a.unwrap_or_else(|e| panic!("{e}")),
            NpyData::U8(Array {
                shape: vec![5],
                data: b"COP1\0".to_vec()
            })
        );
        assert!(parse_npy(&npy_bytes("|S5", &[], b"COP")).is_err());
        assert!(parse_npy(&npy_bytes("|Sx", &[], b"COP")).is_err());
    }

    /// float16 files (numpy's `<f2`) widen exactly: the bit patterns of 1.0, -2.5, the largest
    /// finite half and the smallest subnormal.
    #[test]
    fn float16_widens_exactly() {
        let body: Vec<u8> = [0x3C00u16, 0xC100, 0x7BFF, 0x0001]
            .iter()
            .flat_map(|b| b.to_le_bytes())
            .collect();
        let a = parse_npy(&npy_bytes("<f2", &[2, 2], &body))
            .and_then(NpyData::into_f32)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.shape, [2, 2]);
        assert_eq!(a.data, [1.0, -2.5, 65504.0, 2f32.powi(-24)]);
        assert!(parse_npy(&npy_bytes("<f2", &[3], &body[..4])).is_err());
    }

    #[test]
    fn bad_npy_is_an_error() {
        assert!(parse_npy(b"not numpy").is_err());
        assert!(parse_npz(b"not a zip").is_err());
    }
}
