//! The section headers of a 32-bit little-endian ELF (the firmware's Arm images): enough to
//! size an image by section without running it, for the real boards `cargo xtask firmware`
//! only builds.

use anyhow::{Context, Result, ensure};

/// `SHT_NOBITS`: a section that takes no bytes in the file (`.bss`, `.uninit`).
pub const SHT_NOBITS: u32 = 8;
/// `SHF_ALLOC`: the section occupies memory at run time.
pub const SHF_ALLOC: u32 = 0x2;

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub kind: u32,
    pub flags: u32,
    pub addr: u32,
    pub size: u32,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b
        .get(at..at + 2)
        .with_context(|| format!("ELF truncated at byte {at}"))?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b
        .get(at..at + 4)
        .with_context(|| format!("ELF truncated at byte {at}"))?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The sections of an ELF32 little-endian image, in header order.
pub fn sections(b: &[u8]) -> Result<Vec<Section>> {
    ensure!(b.get(..4) == Some(b"\x7fELF".as_slice()), "not an ELF file");
    ensure!(
        b.get(4) == Some(&1) && b.get(5) == Some(&1),
        "not a 32-bit little-endian ELF"
    );
    let shoff = u32_at(b, 0x20)? as usize;
    let shentsize = usize::from(u16_at(b, 0x2e)?);
    let shnum = usize::from(u16_at(b, 0x30)?);
    let shstrndx = usize::from(u16_at(b, 0x32)?);
    ensure!(
        shentsize >= 40,
        "section header entries of {shentsize} bytes"
    );
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(b, header(shstrndx) + 0x10)? as usize;
    let mut out = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let h = header(i);
        let name_at = strtab + u32_at(b, h)? as usize;
        let name = b
            .get(name_at..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .with_context(|| format!("section {i}: name outside the file"))?;
        out.push(Section {
            name: String::from_utf8_lossy(name).into_owned(),
            kind: u32_at(b, h + 0x04)?,
            flags: u32_at(b, h + 0x08)?,
            addr: u32_at(b, h + 0x0c)?,
            size: u32_at(b, h + 0x14)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A minimal ELF32 LE image with these (name, type, flags, addr, size) sections after the
    /// null section, and a `.shstrtab`.
    pub fn image(secs: &[(&str, u32, u32, u32, u32)]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut names = Vec::new();
        for (n, ..) in secs.iter() {
            names.push(strtab.len() as u32);
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
        }
        let shstr_name = strtab.len() as u32;
        strtab.extend_from_slice(b".shstrtab\0");
        let mut b = vec![0u8; 52];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 1;
        b[5] = 1;
        let strtab_off = b.len() as u32;
        b.extend_from_slice(&strtab);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let shoff = b.len() as u32;
        let shnum = secs.len() as u16 + 2;
        b[0x20..0x24].copy_from_slice(&shoff.to_le_bytes());
        b[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        b[0x30..0x32].copy_from_slice(&shnum.to_le_bytes());
        b[0x32..0x34].copy_from_slice(&(shnum - 1).to_le_bytes());
        let mut push = |name: u32, kind: u32, flags: u32, addr: u32, off: u32, size: u32| {
            for w in [name, kind, flags, addr, off, size, 0, 0, 4, 0] {
                b.extend_from_slice(&w.to_le_bytes());
            }
        };
        push(0, 0, 0, 0, 0, 0);
        for (i, &(_, kind, flags, addr, size)) in secs.iter().enumerate() {
            push(names[i], kind, flags, addr, 0, size);
        }
        push(shstr_name, 3, 0, 0, strtab_off, strtab.len() as u32);
        b
    }

    #[test]
    fn sections_are_read() {
        let b = image(&[
            (".text", 1, 0x6, 0x100, 1000),
            (".bss", 8, 0x3, 0x2000_0000, 64),
        ]);
        let s = sections(&b).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[1].name, ".text");
        assert_eq!((s[1].addr, s[1].size), (0x100, 1000));
        assert_eq!((s[2].name.as_str(), s[2].kind), (".bss", SHT_NOBITS));
        assert_eq!(s[3].name, ".shstrtab");
        assert!(sections(b"\x7fELF").is_err(), "truncated");
        assert!(sections(b"not an elf at all").is_err());
        let mut be = b.clone();
        be[5] = 2;
        assert!(sections(&be).is_err(), "big-endian");
    }
}
