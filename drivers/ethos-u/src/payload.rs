//! Vela's command-stream payload (`cmd_data` of `--output-format raw`, the custom operator's
//! data of a Vela TFLite file): the four characters `COP1`, then driver actions, each a 32-bit
//! tag (action in bits 0..8, data in 8..32) with its words:
//!
//! | action | words after the tag |
//! |---|---|
//! | 1, optimizer config | the `CONFIG` and `ID` values Vela compiled for |
//! | 2, command stream | `len` words of NPU commands, `len` = bits 8..16 (high) and 16..32 (low) of the tag |
//! | 5, no-op | none (Vela pads with them so the command stream starts 16-byte aligned) |
//!
//! All little-endian. Vela writes one optimizer config and one command stream.

/// `COP1` ("custom operator payload 1") as a little-endian word.
pub const FOURCC: u32 = u32::from_le_bytes(*b"COP1");

const OPTIMIZER_CONFIG: u32 = 1;
const COMMAND_STREAM: u32 = 2;
const NOP: u32 = 5;

/// What the driver needs of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// The `CONFIG` value Vela compiled for.
    pub config: u32,
    /// The `ID` value Vela compiled for.
    pub id: u32,
    /// Byte offset of the NPU commands in the payload.
    pub offset: usize,
    /// Their length in bytes (`QSIZE`).
    pub bytes: usize,
}

fn word(data: &[u8], i: usize) -> Option<u32> {
    let b = data.get(i * 4..i * 4 + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parse a payload; the error says what is wrong with it.
pub fn parse(data: &[u8]) -> Result<Payload, &'static str> {
    if !data.len().is_multiple_of(4) {
        return Err("not a whole number of 32-bit words");
    }
    if word(data, 0) != Some(FOURCC) {
        return Err("does not start with COP1 (not Vela's command-stream payload)");
    }
    let words = data.len() / 4;
    let (mut cfg, mut stream) = (None, None);
    let mut i = 1;
    while i < words {
        let tag = word(data, i).ok_or("truncated")?;
        match tag & 0xFF {
            OPTIMIZER_CONFIG => {
                let (c, id) = (word(data, i + 1), word(data, i + 2));
                let (Some(c), Some(id)) = (c, id) else {
                    return Err("optimizer config truncated");
                };
                cfg = Some((c, id));
                i += 3;
            }
            COMMAND_STREAM => {
                if stream.is_some() {
                    return Err("more than one command stream");
                }
                let len = (((tag >> 8) & 0xFF) << 16 | tag >> 16) as usize;
                if len == 0 || i + 1 + len > words {
                    return Err("command stream length outside the payload");
                }
                stream = Some(((i + 1) * 4, len * 4));
                i += 1 + len;
            }
            NOP => i += 1,
            _ => return Err("unknown driver action"),
        }
    }
    let (config, id) = cfg.ok_or("no optimizer config")?;
    let (offset, bytes) = stream.ok_or("no command stream")?;
    Ok(Payload {
        config,
        id,
        offset,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(words: &[u32]) -> [u8; 64] {
        let mut b = [0u8; 64];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Vela 5.2's payload for ethos-u55-128 and a two-word stream (driver_actions.py).
    const VELA: [u32; 10] = [
        0x3150_4f43,
        0x0010_0001,
        0x1807,
        0x1006_0000,
        5,
        5,
        5,
        0x0002_0002,
        0x1234,
        0x5678,
    ];

    #[test]
    fn vela_payload() {
        let b = bytes(&VELA);
        let p = parse(&b[..40]).expect("parse");
        assert_eq!(
            p,
            Payload {
                config: 0x1807,
                id: 0x1006_0000,
                offset: 32,
                bytes: 8
            }
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        let b = bytes(&VELA);
        assert!(parse(&b[..39]).is_err(), "not whole words");
        assert!(parse(&b[..36]).is_err(), "stream cut short");
        assert!(parse(&b[..28]).is_err(), "no stream");
        let mut x = VELA;
        x[0] = 0x3250_4f43;
        assert!(parse(&bytes(&x)[..40]).is_err(), "magic");
        let mut x = VELA;
        x[4] = 9;
        assert!(parse(&bytes(&x)[..40]).is_err(), "unknown action");
        let mut x = VELA;
        x[1] = 5;
        assert!(parse(&bytes(&x)[..40]).is_err(), "no config");
        // A length with the high byte set points far outside.
        let mut x = VELA;
        x[7] = 0x0002_0102;
        assert!(parse(&bytes(&x)[..40]).is_err(), "length");
        assert!(parse(&[]).is_err());
    }
}
