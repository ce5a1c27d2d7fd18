//! Attribute access: every read checks the attribute's declared type (as tract does), and the
//! window attributes (`strides`, `dilations`, `kernel_shape`, `pads`) their length and range.
//! Errors name the attribute; the caller adds the node.

use anyhow::{Result, anyhow, bail};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

/// The attribute `name` of node `n`, if present, checked to be of type `ty`.
fn typed<'a>(
    n: &'a pb::NodeProto,
    name: &str,
    ty: AttributeType,
) -> Result<Option<&'a pb::AttributeProto>> {
    let Some(a) = n.attribute.iter().find(|a| a.name == name) else {
        return Ok(None);
    };
    if a.r#type != ty as i32 {
        let got = AttributeType::try_from(a.r#type).map_or("an unknown type", |t| t.as_str_name());
        bail!(
            "attribute {name} must be of type {}, got {got}",
            ty.as_str_name()
        );
    }
    Ok(Some(a))
}

/// Integer attribute, or `default` when absent.
pub(crate) fn int(n: &pb::NodeProto, name: &str, default: i64) -> Result<i64> {
    Ok(typed(n, name, AttributeType::Int)?.map_or(default, |a| a.i))
}

/// Integer attribute read as a flag (non-zero is true), `false` when absent.
pub(crate) fn flag(n: &pb::NodeProto, name: &str) -> Result<bool> {
    Ok(int(n, name, 0)? != 0)
}

/// Float attribute, or `default` when absent.
pub(crate) fn float(n: &pb::NodeProto, name: &str, default: f32) -> Result<f32> {
    Ok(typed(n, name, AttributeType::Float)?.map_or(default, |a| a.f))
}

/// Float attribute that must be finite, or `default` when absent.
pub(crate) fn finite(n: &pb::NodeProto, name: &str, default: f32) -> Result<f32> {
    let v = float(n, name, default)?;
    if !v.is_finite() {
        bail!("attribute {name} must be finite, got {v}");
    }
    Ok(v)
}

/// Integer-list attribute, if present.
pub(crate) fn ints<'a>(n: &'a pb::NodeProto, name: &str) -> Result<Option<&'a [i64]>> {
    Ok(typed(n, name, AttributeType::Ints)?.map(|a| a.ints.as_slice()))
}

/// String attribute (UTF-8), or the empty string when absent.
pub(crate) fn string(n: &pb::NodeProto, name: &str) -> Result<String> {
    match typed(n, name, AttributeType::String)? {
        None => Ok(String::new()),
        Some(a) => String::from_utf8(a.s.clone())
            .map_err(|_| anyhow!("attribute {name} is not valid UTF-8")),
    }
}

/// Tensor attribute, if present.
pub(crate) fn tensor<'a>(n: &'a pb::NodeProto, name: &str) -> Result<Option<&'a pb::TensorProto>> {
    match typed(n, name, AttributeType::Tensor)? {
        None => Ok(None),
        Some(a) => {
            a.t.as_ref()
                .map(Some)
                .ok_or_else(|| anyhow!("attribute {name} has type TENSOR but no tensor"))
        }
    }
}

/// A 2-D window attribute (`[h, w]`), each value at least `min`; `default` when absent (an
/// error when there is no default).
pub(crate) fn pair(
    n: &pb::NodeProto,
    name: &str,
    default: Option<[usize; 2]>,
    min: usize,
) -> Result<[usize; 2]> {
    let Some(v) = ints(n, name)? else {
        return default.ok_or_else(|| anyhow!("attribute {name} is missing"));
    };
    let ok = |x: i64| usize::try_from(x).ok().filter(|&x| x >= min);
    match v {
        [a, b] => match (ok(*a), ok(*b)) {
            (Some(a), Some(b)) => Ok([a, b]),
            _ => bail!("{name} must be two values >= {min} (2-D), got {v:?}"),
        },
        _ => bail!("{name} must be two values >= {min} (2-D), got {v:?}"),
    }
}

/// The `pads` attribute of a 2-D window op: `[top, left, bottom, right]`, zeros when absent.
pub(crate) fn pads(n: &pb::NodeProto) -> Result<[usize; 4]> {
    let Some(p) = ints(n, "pads")? else {
        return Ok([0; 4]);
    };
    let v: Option<Vec<usize>> = p.iter().map(|&x| usize::try_from(x).ok()).collect();
    match v.as_deref() {
        Some(&[a, b, c, d]) => Ok([a, b, c, d]),
        _ => bail!("pads must have four non-negative values, got {p:?}"),
    }
}
