//! TIFF/BigTIFF structure: the header, the IFD chain and tag values, read through a
//! [`Source`] that may fetch bytes lazily. Every count and offset read from the file is
//! checked before it is used, so hostile files give errors, never panics or huge allocations.

use std::collections::HashSet;
use std::ops::Range;

use bytes::Bytes;

use crate::error::CogError;

/// TIFF tags this crate reads or writes.
pub mod tag {
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    pub const IMAGE_WIDTH: u16 = 256;
    pub const IMAGE_LENGTH: u16 = 257;
    pub const BITS_PER_SAMPLE: u16 = 258;
    pub const COMPRESSION: u16 = 259;
    pub const PHOTOMETRIC: u16 = 262;
    pub const STRIP_OFFSETS: u16 = 273;
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    pub const ROWS_PER_STRIP: u16 = 278;
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    pub const PLANAR_CONFIG: u16 = 284;
    pub const PREDICTOR: u16 = 317;
    pub const TILE_WIDTH: u16 = 322;
    pub const TILE_LENGTH: u16 = 323;
    pub const TILE_OFFSETS: u16 = 324;
    pub const TILE_BYTE_COUNTS: u16 = 325;
    pub const EXTRA_SAMPLES: u16 = 338;
    pub const SAMPLE_FORMAT: u16 = 339;
    pub const JPEG_TABLES: u16 = 347;
    pub const MODEL_PIXEL_SCALE: u16 = 33550;
    pub const MODEL_TIEPOINT: u16 = 33922;
    pub const MODEL_TRANSFORMATION: u16 = 34264;
    pub const GEO_KEY_DIRECTORY: u16 = 34735;
    pub const GEO_DOUBLE_PARAMS: u16 = 34736;
    pub const GEO_ASCII_PARAMS: u16 = 34737;
    pub const GDAL_METADATA: u16 = 42112;
    pub const GDAL_NODATA: u16 = 42113;
}

/// TIFF field types.
pub mod ty {
    pub const BYTE: u16 = 1;
    pub const ASCII: u16 = 2;
    pub const SHORT: u16 = 3;
    pub const LONG: u16 = 4;
    pub const RATIONAL: u16 = 5;
    pub const SBYTE: u16 = 6;
    pub const UNDEFINED: u16 = 7;
    pub const SSHORT: u16 = 8;
    pub const SLONG: u16 = 9;
    pub const SRATIONAL: u16 = 10;
    pub const FLOAT: u16 = 11;
    pub const DOUBLE: u16 = 12;
    pub const IFD: u16 = 13;
    pub const LONG8: u16 = 16;
    pub const SLONG8: u16 = 17;
    pub const IFD8: u16 = 18;
}

/// Size in bytes of one value of a TIFF field type (None for unknown types).
pub fn type_size(t: u16) -> Option<u64> {
    Some(match t {
        ty::BYTE | ty::ASCII | ty::SBYTE | ty::UNDEFINED => 1,
        ty::SHORT | ty::SSHORT => 2,
        ty::LONG | ty::SLONG | ty::FLOAT | ty::IFD => 4,
        ty::RATIONAL | ty::SRATIONAL | ty::DOUBLE | ty::LONG8 | ty::SLONG8 | ty::IFD8 => 8,
        _ => return None,
    })
}

/// Most IFDs followed in one file (GDAL COGs have a few dozen at most).
pub const MAX_IFDS: usize = 4096;
/// Most entries in one IFD.
pub const MAX_ENTRIES: u64 = 4096;
/// Largest tag value read, in bytes.
pub const MAX_TAG_BYTES: u64 = 512 * 1024 * 1024;

/// Where the parser gets bytes from: a file read lazily by ranges.
pub trait Source {
    /// The file's URI (for error messages).
    fn uri(&self) -> &str;
    /// Exactly the bytes `range` of the file, or an error if they lie past its end.
    fn bytes(&self, range: Range<u64>) -> Result<Bytes, CogError>;
}

/// An in-memory [`Source`].
#[cfg(test)]
pub struct MemSource<'a> {
    pub uri: &'a str,
    pub data: Bytes,
}

#[cfg(test)]
impl Source for MemSource<'_> {
    fn uri(&self) -> &str {
        self.uri
    }
    fn bytes(&self, range: Range<u64>) -> Result<Bytes, CogError> {
        if range.start > range.end || range.end > self.data.len() as u64 {
            return Err(CogError::invalid(
                self.uri,
                format!(
                    "bytes {}..{} lie past the end of the file ({} bytes)",
                    range.start,
                    range.end,
                    self.data.len()
                ),
            ));
        }
        Ok(self.data.slice(range.start as usize..range.end as usize))
    }
}

/// The TIFF header: byte order, classic or BigTIFF, first IFD offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub little_endian: bool,
    pub bigtiff: bool,
    pub first_ifd: u64,
}

impl Header {
    /// Parses the first 8 (classic) or 16 (BigTIFF) bytes.
    pub fn parse(uri: &str, b: &[u8]) -> Result<Header, CogError> {
        if b.len() < 8 {
            return Err(CogError::invalid(uri, "file too short for a TIFF header"));
        }
        let le = match &b[0..2] {
            b"II" => true,
            b"MM" => false,
            _ => {
                return Err(CogError::invalid(
                    uri,
                    "not a TIFF file (no II/MM byte-order mark)",
                ));
            }
        };
        let e = Endian(le);
        match e.u16(&b[2..4]) {
            42 => Ok(Header {
                little_endian: le,
                bigtiff: false,
                first_ifd: e.u32(&b[4..8]) as u64,
            }),
            43 => {
                if b.len() < 16 {
                    return Err(CogError::invalid(
                        uri,
                        "file too short for a BigTIFF header",
                    ));
                }
                if e.u16(&b[4..6]) != 8 || e.u16(&b[6..8]) != 0 {
                    return Err(CogError::invalid(
                        uri,
                        "BigTIFF header has a bad offset size",
                    ));
                }
                Ok(Header {
                    little_endian: le,
                    bigtiff: true,
                    first_ifd: e.u64(&b[8..16]),
                })
            }
            v => Err(CogError::invalid(
                uri,
                format!("not a TIFF file (version {v})"),
            )),
        }
    }

    /// Bytes of one IFD entry.
    pub fn entry_size(&self) -> u64 {
        if self.bigtiff { 20 } else { 12 }
    }

    /// Bytes available for a value inside an entry.
    pub fn inline_size(&self) -> u64 {
        if self.bigtiff { 8 } else { 4 }
    }

    pub fn endian(&self) -> Endian {
        Endian(self.little_endian)
    }
}

/// Byte-order aware integer and float reads from slices (callers pass exact lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endian(pub bool);

impl Endian {
    #[inline]
    pub fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.0 {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }
    #[inline]
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.0 {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }
    #[inline]
    pub fn u64(self, b: &[u8]) -> u64 {
        let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.0 {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        }
    }
}

/// One IFD entry; the value is inline in `raw` or at the offset stored there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tag: u16,
    pub typ: u16,
    pub count: u64,
    raw: [u8; 8],
}

/// One parsed IFD: its entries (sorted by tag; the file may have them in any order) and
/// the offset of the next IFD (0 at the end of the chain).
#[derive(Debug, Clone)]
pub struct Ifd {
    pub offset: u64,
    pub entries: Vec<Entry>,
    pub next: u64,
}

impl Ifd {
    pub fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&tag, |e| e.tag)
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Reads a TIFF's structure through a [`Source`].
pub struct Reader<'a, S: Source + ?Sized> {
    pub src: &'a S,
    pub header: Header,
}

impl<'a, S: Source + ?Sized> Reader<'a, S> {
    pub fn new(src: &'a S, header: Header) -> Self {
        Reader { src, header }
    }

    fn uri(&self) -> &str {
        self.src.uri()
    }

    /// Follows the IFD chain from the header, refusing loops and more than [`MAX_IFDS`].
    pub fn ifds(&self) -> Result<Vec<Ifd>, CogError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = self.header.first_ifd;
        while next != 0 {
            if !seen.insert(next) {
                return Err(CogError::invalid(
                    self.uri(),
                    format!("IFD chain loops back to offset {next}"),
                ));
            }
            if out.len() >= MAX_IFDS {
                return Err(CogError::invalid(
                    self.uri(),
                    format!("more than {MAX_IFDS} IFDs"),
                ));
            }
            let ifd = self.ifd(next)?;
            next = ifd.next;
            out.push(ifd);
        }
        if out.is_empty() {
            return Err(CogError::invalid(self.uri(), "the TIFF has no IFD"));
        }
        Ok(out)
    }

    /// Parses the IFD at `offset`.
    pub fn ifd(&self, offset: u64) -> Result<Ifd, CogError> {
        let h = &self.header;
        let e = h.endian();
        let count_size = if h.bigtiff { 8 } else { 2 };
        let at = |what: &str, err: CogError| match err {
            CogError::Invalid { uri, reason } => CogError::Invalid {
                uri,
                reason: format!("{what} at offset {offset}: {reason}"),
            },
            other => other,
        };
        let end = offset.checked_add(count_size).ok_or_else(|| {
            CogError::invalid(self.uri(), format!("IFD offset {offset} overflows"))
        })?;
        let cb = self.src.bytes(offset..end).map_err(|x| at("IFD", x))?;
        let n = if h.bigtiff {
            e.u64(&cb)
        } else {
            e.u16(&cb) as u64
        };
        if n == 0 {
            return Err(CogError::invalid(
                self.uri(),
                format!("IFD at offset {offset} has no entries"),
            ));
        }
        if n > MAX_ENTRIES {
            return Err(CogError::invalid(
                self.uri(),
                format!("IFD at offset {offset} claims {n} entries (limit {MAX_ENTRIES})"),
            ));
        }
        let es = h.entry_size();
        let body_len = n * es + if h.bigtiff { 8 } else { 4 };
        let body = self
            .src
            .bytes(end..end + body_len)
            .map_err(|x| at("IFD entries", x))?;
        let mut entries = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let b = &body[i * es as usize..(i + 1) * es as usize];
            let tag = e.u16(&b[0..2]);
            let typ = e.u16(&b[2..4]);
            let (count, rawb) = if h.bigtiff {
                (e.u64(&b[4..12]), &b[12..20])
            } else {
                (e.u32(&b[4..8]) as u64, &b[8..12])
            };
            let mut raw = [0u8; 8];
            raw[..rawb.len()].copy_from_slice(rawb);
            entries.push(Entry {
                tag,
                typ,
                count,
                raw,
            });
        }
        // Tags in any order: sort, and keep the first of duplicates (as libtiff does).
        entries.sort_by_key(|x| x.tag);
        entries.dedup_by_key(|x| x.tag);
        let nb = &body[(n * es) as usize..];
        let next = if h.bigtiff {
            e.u64(nb)
        } else {
            e.u32(nb) as u64
        };
        Ok(Ifd {
            offset,
            entries,
            next,
        })
    }

    /// The raw bytes of an entry's value (inline or fetched), checked in size.
    pub fn raw_value(&self, en: &Entry) -> Result<Bytes, CogError> {
        let size = type_size(en.typ).ok_or_else(|| {
            CogError::invalid(
                self.uri(),
                format!("tag {} has unknown field type {}", en.tag, en.typ),
            )
        })?;
        let len = en
            .count
            .checked_mul(size)
            .filter(|&l| l <= MAX_TAG_BYTES)
            .ok_or_else(|| {
                CogError::invalid(
                    self.uri(),
                    format!("tag {} claims {} values of {size} bytes", en.tag, en.count),
                )
            })?;
        if len <= self.header.inline_size() {
            return Ok(Bytes::copy_from_slice(&en.raw[..len as usize]));
        }
        let e = self.header.endian();
        let off = if self.header.bigtiff {
            e.u64(&en.raw)
        } else {
            e.u32(&en.raw[..4]) as u64
        };
        let end = off.checked_add(len).ok_or_else(|| {
            CogError::invalid(self.uri(), format!("tag {} value offset overflows", en.tag))
        })?;
        self.src.bytes(off..end).map_err(|x| match x {
            CogError::Invalid { uri, reason } => CogError::Invalid {
                uri,
                reason: format!("value of tag {}: {reason}", en.tag),
            },
            other => other,
        })
    }

    /// An integer-typed entry's values as u64 (signed values must be non-negative).
    pub fn u64s(&self, en: &Entry) -> Result<Vec<u64>, CogError> {
        let raw = self.raw_value(en)?;
        let e = self.header.endian();
        let bad = || {
            CogError::invalid(
                self.uri(),
                format!(
                    "tag {} has type {}, expected an integer type",
                    en.tag, en.typ
                ),
            )
        };
        let v: Vec<u64> = match en.typ {
            ty::BYTE | ty::UNDEFINED => raw.iter().map(|&b| b as u64).collect(),
            ty::SHORT => raw.chunks_exact(2).map(|c| e.u16(c) as u64).collect(),
            ty::LONG | ty::IFD => raw.chunks_exact(4).map(|c| e.u32(c) as u64).collect(),
            ty::LONG8 | ty::IFD8 => raw.chunks_exact(8).map(|c| e.u64(c)).collect(),
            ty::SSHORT => raw
                .chunks_exact(2)
                .map(|c| e.u16(c) as i16 as i64 as u64)
                .collect(),
            ty::SLONG => raw
                .chunks_exact(4)
                .map(|c| e.u32(c) as i32 as i64 as u64)
                .collect(),
            ty::SLONG8 => raw.chunks_exact(8).map(|c| e.u64(c)).collect(),
            _ => return Err(bad()),
        };
        Ok(v)
    }

    /// The single integer value of an entry.
    pub fn u64_one(&self, en: &Entry) -> Result<u64, CogError> {
        self.u64s(en)?
            .first()
            .copied()
            .ok_or_else(|| CogError::invalid(self.uri(), format!("tag {} has no value", en.tag)))
    }

    /// A numeric entry's values as f64.
    pub fn f64s(&self, en: &Entry) -> Result<Vec<f64>, CogError> {
        let raw = self.raw_value(en)?;
        let e = self.header.endian();
        Ok(match en.typ {
            ty::DOUBLE => raw
                .chunks_exact(8)
                .map(|c| f64::from_bits(e.u64(c)))
                .collect(),
            ty::FLOAT => raw
                .chunks_exact(4)
                .map(|c| f32::from_bits(e.u32(c)) as f64)
                .collect(),
            ty::RATIONAL => raw
                .chunks_exact(8)
                .map(|c| e.u32(&c[..4]) as f64 / e.u32(&c[4..]) as f64)
                .collect(),
            ty::SRATIONAL => raw
                .chunks_exact(8)
                .map(|c| e.u32(&c[..4]) as i32 as f64 / e.u32(&c[4..]) as i32 as f64)
                .collect(),
            ty::SBYTE => raw.iter().map(|&b| b as i8 as f64).collect(),
            ty::SSHORT | ty::SLONG | ty::SLONG8 => self
                .u64s(en)?
                .into_iter()
                .map(|v| v as i64 as f64)
                .collect(),
            _ => self.u64s(en)?.into_iter().map(|v| v as f64).collect(),
        })
    }

    /// An ASCII entry as text (up to the first NUL; invalid UTF-8 replaced).
    pub fn ascii(&self, en: &Entry) -> Result<String, CogError> {
        let raw = self.raw_value(en)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tiny_tiff() -> Vec<u8> {
        // II*, IFD at 8 with 2 entries in reverse order, then next = 0.
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        for (tag, val) in [(257u16, 7u32), (256u16, 5u32)] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&ty::LONG.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&val.to_le_bytes());
        }
        v.extend_from_slice(&0u32.to_le_bytes());
        v
    }

    #[test]
    fn parses_entries_in_any_order() {
        let data = tiny_tiff();
        let src = MemSource {
            uri: "mem",
            data: Bytes::from(data.clone()),
        };
        let h = Header::parse("mem", &data).unwrap();
        let r = Reader::new(&src, h);
        let ifds = r.ifds().unwrap();
        assert_eq!(ifds.len(), 1);
        let w = r.u64_one(ifds[0].get(tag::IMAGE_WIDTH).unwrap()).unwrap();
        let hh = r.u64_one(ifds[0].get(tag::IMAGE_LENGTH).unwrap()).unwrap();
        assert_eq!((w, hh), (5, 7));
    }

    #[test]
    fn detects_ifd_loops() {
        let mut data = tiny_tiff();
        let n = data.len();
        data[n - 4..].copy_from_slice(&8u32.to_le_bytes());
        let src = MemSource {
            uri: "mem",
            data: Bytes::from(data.clone()),
        };
        let h = Header::parse("mem", &data).unwrap();
        let err = Reader::new(&src, h).ifds().unwrap_err().to_string();
        assert!(err.contains("loops"), "{err}");
    }
}
