//! Tensor decoding: ONNX `TensorProto`s (initializers and `Constant` values) to shapes and
//! element data, with every length, sign and range checked.

use anyhow::{Result, anyhow, bail};
use tract_onnx::pb;

/// Element data of a constant as the file stores it.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    /// float32.
    F32(Vec<f32>),
    /// int8.
    I8(Vec<i8>),
    /// uint8.
    U8(Vec<u8>),
    /// int32.
    I32(Vec<i32>),
    /// int64.
    I64(Vec<i64>),
}

impl Data {
    /// The values as float32.
    pub(crate) fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Number of values.
    pub(crate) fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }
}

/// The name of ONNX element type `t`, for messages.
pub(crate) fn dtype_name(t: i32) -> &'static str {
    match t {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        10 => "float16",
        11 => "float64",
        // the others by their ONNX name (BOOL, STRING, FLOAT8E4M3FN, ...)
        _ => tract_onnx::pb::tensor_proto::DataType::try_from(t)
            .map_or("an unknown type", |d| d.as_str_name()),
    }
}

/// The number of elements of `dims`, or an error when the product does not fit in `usize`.
pub(crate) fn element_count(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| anyhow!("shape {dims:?} has too many elements"))
}

/// `raw` cut into `N`-byte little-endian elements; an error when its length is not a multiple
/// of `N`.
fn chunks<const N: usize>(raw: &[u8], what: &str) -> Result<Vec<[u8; N]>> {
    if !raw.len().is_multiple_of(N) {
        bail!(
            "raw_data of {} bytes is not a multiple of the {N}-byte {what} element",
            raw.len()
        );
    }
    Ok(raw
        .chunks_exact(N)
        .map(|b| {
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            a
        })
        .collect())
}

/// Narrow the `int32_data` of an 8-bit tensor, rejecting values out of range.
fn narrow<T: TryFrom<i32>>(v: &[i32], what: &str) -> Result<Vec<T>> {
    v.iter()
        .map(|&x| T::try_from(x).map_err(|_| anyhow!("value {x} is out of range for {what}")))
        .collect()
}

/// Decode a tensor: its shape and data, the number of values checked against the shape.
pub(crate) fn read_tensor(t: &pb::TensorProto) -> Result<(Vec<usize>, Data)> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| anyhow!("tensor {}: negative dimension {d}", t.name))
        })
        .collect::<Result<_>>()?;
    let n = element_count(&dims).map_err(|e| anyhow!("tensor {}: {e}", t.name))?;
    if t.data_location == Some(1) {
        bail!(
            "tensor {} uses external data, which is not supported",
            t.name
        );
    }
    let raw = &t.raw_data;
    let decode = || -> Result<Data> {
        Ok(match t.data_type {
            1 => Data::F32(if raw.is_empty() {
                t.float_data.clone()
            } else {
                chunks::<4>(raw, "float32")?
                    .into_iter()
                    .map(f32::from_le_bytes)
                    .collect()
            }),
            2 => Data::U8(if raw.is_empty() {
                narrow(&t.int32_data, "uint8")?
            } else {
                raw.clone()
            }),
            3 => Data::I8(if raw.is_empty() {
                narrow(&t.int32_data, "int8")?
            } else {
                raw.iter().map(|&x| x as i8).collect()
            }),
            6 => Data::I32(if raw.is_empty() {
                t.int32_data.clone()
            } else {
                chunks::<4>(raw, "int32")?
                    .into_iter()
                    .map(i32::from_le_bytes)
                    .collect()
            }),
            7 => Data::I64(if raw.is_empty() {
                t.int64_data.clone()
            } else {
                chunks::<8>(raw, "int64")?
                    .into_iter()
                    .map(i64::from_le_bytes)
                    .collect()
            }),
            other => bail!(
                "element type {} is not supported (float32, int8, uint8, int32, int64)",
                dtype_name(other)
            ),
        })
    };
    let data = decode().map_err(|e| anyhow!("tensor {}: {e}", t.name))?;
    if data.len() != n {
        bail!(
            "tensor {}: {} values for shape {:?}",
            t.name,
            data.len(),
            dims
        );
    }
    Ok((dims, data))
}
