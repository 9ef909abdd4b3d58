//! The LAS 1.0–1.4 public header block and point record layouts (ASPRS LAS 1.4 R15): the
//! one header validation every geobutton crate that reads point clouds goes through.
//!
//! The header is kept as its raw bytes (every field, reserved bytes and any user-defined
//! header bytes preserved) plus the parsed fields; writing a file patches only the fields
//! that change (point format compression bit, offsets, counts, bounds).

use serde::{Deserialize, Serialize};

/// Byte offsets of the fields of the public header block.
pub mod off {
    pub const GLOBAL_ENCODING: usize = 6;
    pub const VERSION_MAJOR: usize = 24;
    pub const VERSION_MINOR: usize = 25;
    pub const SYSTEM_ID: usize = 26;
    pub const SOFTWARE: usize = 58;
    pub const CREATION_DAY: usize = 90;
    pub const CREATION_YEAR: usize = 92;
    pub const HEADER_SIZE: usize = 94;
    pub const OFFSET_TO_POINTS: usize = 96;
    pub const NUMBER_OF_VLRS: usize = 100;
    pub const POINT_FORMAT: usize = 104;
    pub const RECORD_LENGTH: usize = 105;
    pub const LEGACY_COUNT: usize = 107;
    pub const LEGACY_RETURNS: usize = 111;
    pub const SCALE: usize = 131;
    pub const OFFSET: usize = 155;
    pub const MAX_X: usize = 179;
    pub const START_OF_WAVEFORM: usize = 227;
    pub const START_OF_FIRST_EVLR: usize = 235;
    pub const NUMBER_OF_EVLRS: usize = 243;
    pub const POINT_COUNT: usize = 247;
    pub const RETURNS: usize = 255;
}

/// Smallest header size of LAS 1.0–1.2, 1.3 and 1.4.
pub const HEADER_SIZE_12: usize = 227;
pub const HEADER_SIZE_13: usize = 235;
pub const HEADER_SIZE_14: usize = 375;
/// Size of a VLR header and of an EVLR header.
pub const VLR_HEADER: usize = 54;
pub const EVLR_HEADER: usize = 60;

/// A LAS point data record format, 0–10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PointFormat(u8);

const BASE_LEN: [u16; 11] = [20, 28, 26, 34, 57, 63, 30, 36, 38, 59, 67];

impl PointFormat {
    /// The format with this id, if it is 0–10.
    pub fn new(id: u8) -> Option<Self> {
        (id <= 10).then_some(PointFormat(id))
    }

    /// The format number, 0–10.
    pub fn id(self) -> u8 {
        self.0
    }

    /// Length in bytes of a record of this format without extra bytes.
    pub fn base_len(self) -> u16 {
        BASE_LEN[self.0 as usize]
    }

    /// Formats 6–10 (LAS 1.4 extended layout: 4-bit return numbers, classification flags
    /// byte, 8-bit classification, 16-bit scan angle, GPS time always present).
    pub fn is_extended(self) -> bool {
        self.0 >= 6
    }

    /// Byte offset of the GPS time (f64) in the record, if the format has one.
    pub fn gps_time_offset(self) -> Option<usize> {
        match self.0 {
            1 | 3 | 4 | 5 => Some(20),
            6..=10 => Some(22),
            _ => None,
        }
    }

    /// Byte offset of red, green, blue (3 × u16), if the format has colour.
    pub fn rgb_offset(self) -> Option<usize> {
        match self.0 {
            2 => Some(20),
            3 | 5 => Some(28),
            7 | 8 | 10 => Some(30),
            _ => None,
        }
    }

    /// Byte offset of the near-infrared channel (u16), formats 8 and 10.
    pub fn nir_offset(self) -> Option<usize> {
        matches!(self.0, 8 | 10).then_some(36)
    }

    /// Byte offset of the 29-byte wave packet descriptor, formats 4, 5, 9, 10.
    pub fn wave_packet_offset(self) -> Option<usize> {
        match self.0 {
            4 => Some(28),
            5 => Some(34),
            9 => Some(30),
            10 => Some(38),
            _ => None,
        }
    }

    /// Byte holding the withheld flag and its mask: bit 7 of the classification byte (15)
    /// for formats 0–5, bit 2 of the classification flags byte (15) for formats 6–10.
    pub fn withheld_mask(self) -> (usize, u8) {
        if self.is_extended() {
            (15, 0x04)
        } else {
            (15, 0x80)
        }
    }

    /// Mask of the return number in byte 14: 3 bits (1–7) for 0–5, 4 bits (1–15) for 6–10.
    pub fn return_number_mask(self) -> u8 {
        if self.is_extended() { 0x0F } else { 0x07 }
    }
}

impl std::fmt::Display for PointFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Reads a little-endian value at `at` (the caller guarantees the length).
pub fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub fn le_i32(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
pub fn le_f64(b: &[u8], at: usize) -> f64 {
    f64::from_bits(le_u64(b, at))
}

/// The generating software geobutton writes into LAS headers: `geobutton <version>`.
pub const GENERATING_SOFTWARE: &str = concat!("geobutton ", env!("CARGO_PKG_VERSION"));

/// [`GENERATING_SOFTWARE`] as the header's 32-byte NUL-padded field.
pub fn software_field() -> [u8; 32] {
    let mut f = [0u8; 32];
    let s = GENERATING_SOFTWARE.as_bytes();
    let n = s.len().min(32);
    f[..n].copy_from_slice(&s[..n]);
    f
}

/// The file creation date of headers written now: today, UTC.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// [`today`] as a header stores it: day of the year (1-based) and year.
pub fn creation_date() -> (u16, u16) {
    use chrono::Datelike;
    let t = today();
    (t.ordinal() as u16, t.year().clamp(0, 65535) as u16)
}

/// A NUL-padded ASCII field as text (trailing NULs and spaces removed).
pub fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// The public header block of a LAS/LAZ file.
///
/// Coordinates are `raw × scale + offset` in the units of the file's CRS (metres, feet or
/// degrees; see its CRS VLRs).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    raw: Vec<u8>,
    version: (u8, u8),
    point_format: PointFormat,
    compressed: bool,
    record_len: u16,
    offset_to_points: u32,
    number_of_vlrs: u32,
    point_count: u64,
    legacy_point_count: u32,
    scale: [f64; 3],
    offset: [f64; 3],
    min: [f64; 3],
    max: [f64; 3],
    start_of_waveform: u64,
    start_of_first_evlr: u64,
    number_of_evlrs: u32,
    global_encoding: u16,
}

impl Header {
    /// Parses a header from the start of a file. `bytes` must hold at least the header size
    /// the header declares (see [`Header::needed_len`]).
    pub fn parse(bytes: &[u8]) -> Result<Header, String> {
        if bytes.len() < HEADER_SIZE_12 {
            return Err(format!(
                "file too short for a LAS header ({} bytes, a header needs at least {HEADER_SIZE_12})",
                bytes.len()
            ));
        }
        if &bytes[0..4] != b"LASF" {
            return Err("not a LAS/LAZ file (no LASF signature)".to_string());
        }
        let version = (bytes[off::VERSION_MAJOR], bytes[off::VERSION_MINOR]);
        if version.0 != 1 || version.1 > 4 {
            return Err(format!(
                "unsupported LAS version {}.{} (1.0 to 1.4 are supported)",
                version.0, version.1
            ));
        }
        let min_size = match version.1 {
            0..=2 => HEADER_SIZE_12,
            3 => HEADER_SIZE_13,
            _ => HEADER_SIZE_14,
        };
        let header_size = le_u16(bytes, off::HEADER_SIZE) as usize;
        if header_size < min_size {
            return Err(format!(
                "header size {header_size} is smaller than the {min_size} bytes of a LAS {}.{} header",
                version.0, version.1
            ));
        }
        if bytes.len() < header_size {
            return Err(format!(
                "file too short for its {header_size}-byte header ({} bytes)",
                bytes.len()
            ));
        }
        let b = &bytes[..header_size];
        let format_byte = b[off::POINT_FORMAT];
        let compressed = format_byte & 0xC0 != 0;
        let point_format = PointFormat::new(format_byte & 0x3F).ok_or_else(|| {
            format!(
                "unknown point data record format {} (byte {format_byte:#04x}; LAS defines 0 to 10)",
                format_byte & 0x3F
            )
        })?;
        let record_len = le_u16(b, off::RECORD_LENGTH);
        if record_len < point_format.base_len() {
            return Err(format!(
                "point record length {record_len} is shorter than the {} bytes of point format {}",
                point_format.base_len(),
                point_format
            ));
        }
        let offset_to_points = le_u32(b, off::OFFSET_TO_POINTS);
        if (offset_to_points as usize) < header_size {
            return Err(format!(
                "offset to point data {offset_to_points} lies inside the {header_size}-byte header"
            ));
        }
        let legacy_point_count = le_u32(b, off::LEGACY_COUNT);
        let three = |at: usize| [le_f64(b, at), le_f64(b, at + 8), le_f64(b, at + 16)];
        let scale = three(off::SCALE);
        let offset = three(off::OFFSET);
        let max = [le_f64(b, 179), le_f64(b, 195), le_f64(b, 211)];
        let min = [le_f64(b, 187), le_f64(b, 203), le_f64(b, 219)];
        for (axis, s) in ["x", "y", "z"].iter().zip(scale) {
            if !(s.is_finite() && s > 0.0) {
                return Err(format!("{axis} scale factor {s} is not a positive number"));
            }
        }
        for (axis, o) in ["x", "y", "z"].iter().zip(offset) {
            if !o.is_finite() {
                return Err(format!("{axis} offset {o} is not a finite number"));
            }
        }
        let (start_of_waveform, start_of_first_evlr, number_of_evlrs, count14) = match version.1 {
            0..=2 => (0, 0, 0, 0),
            3 => (le_u64(b, off::START_OF_WAVEFORM), 0, 0, 0),
            _ => (
                le_u64(b, off::START_OF_WAVEFORM),
                le_u64(b, off::START_OF_FIRST_EVLR),
                le_u32(b, off::NUMBER_OF_EVLRS),
                le_u64(b, off::POINT_COUNT),
            ),
        };
        let point_count = if version.1 >= 4 && count14 != 0 {
            count14
        } else {
            u64::from(legacy_point_count)
        };
        Ok(Header {
            raw: b.to_vec(),
            version,
            point_format,
            compressed,
            record_len,
            offset_to_points,
            number_of_vlrs: le_u32(b, off::NUMBER_OF_VLRS),
            point_count,
            legacy_point_count,
            scale,
            offset,
            min,
            max,
            start_of_waveform,
            start_of_first_evlr,
            number_of_evlrs,
            global_encoding: le_u16(b, off::GLOBAL_ENCODING),
        })
    }

    /// The header size declared in the first `HEADER_SIZE_12` bytes (to read the rest).
    pub fn needed_len(prefix: &[u8]) -> usize {
        if prefix.len() >= off::HEADER_SIZE + 2 {
            le_u16(prefix, off::HEADER_SIZE) as usize
        } else {
            HEADER_SIZE_12
        }
    }

    /// The header bytes as read (header size long).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    /// LAS version (major, minor).
    pub fn version(&self) -> (u8, u8) {
        self.version
    }
    /// Point data record format.
    pub fn point_format(&self) -> PointFormat {
        self.point_format
    }
    /// Whether the point data is LASzip-compressed (bit 7 or 6 of the format byte).
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }
    /// Bytes per point record (extra bytes included).
    pub fn record_len(&self) -> u16 {
        self.record_len
    }
    /// Extra bytes per record beyond the point format's standard fields.
    pub fn extra_bytes(&self) -> u16 {
        self.record_len - self.point_format.base_len()
    }
    /// Size of the header block in bytes.
    pub fn header_size(&self) -> u16 {
        self.raw.len() as u16
    }
    /// Byte offset of the first point record.
    pub fn offset_to_points(&self) -> u32 {
        self.offset_to_points
    }
    /// Number of VLRs after the header.
    pub fn number_of_vlrs(&self) -> u32 {
        self.number_of_vlrs
    }
    /// Number of point records (the LAS 1.4 64-bit count when set, else the legacy count).
    pub fn point_count(&self) -> u64 {
        self.point_count
    }
    /// The legacy 32-bit point count field.
    pub fn legacy_point_count(&self) -> u32 {
        self.legacy_point_count
    }
    /// Scale factors x, y, z.
    pub fn scale(&self) -> [f64; 3] {
        self.scale
    }
    /// Offsets x, y, z.
    pub fn offset(&self) -> [f64; 3] {
        self.offset
    }
    /// Header minimum x, y, z (as written by the producer; not checked against the points).
    pub fn min(&self) -> [f64; 3] {
        self.min
    }
    /// Header maximum x, y, z.
    pub fn max(&self) -> [f64; 3] {
        self.max
    }
    /// Global encoding bits (GPS time type, waveform location, WKT CRS, ...).
    pub fn global_encoding(&self) -> u16 {
        self.global_encoding
    }
    /// Byte offset of the waveform data packet record (LAS 1.3+, 0 when none).
    pub fn start_of_waveform(&self) -> u64 {
        self.start_of_waveform
    }
    /// Byte offset of the first EVLR (LAS 1.4).
    pub fn start_of_first_evlr(&self) -> u64 {
        self.start_of_first_evlr
    }
    /// Number of EVLRs (LAS 1.4).
    pub fn number_of_evlrs(&self) -> u32 {
        self.number_of_evlrs
    }
    /// System identifier text.
    pub fn system_identifier(&self) -> String {
        text(&self.raw[off::SYSTEM_ID..off::SYSTEM_ID + 32])
    }
    /// Generating software text.
    pub fn generating_software(&self) -> String {
        text(&self.raw[off::SOFTWARE..off::SOFTWARE + 32])
    }

    /// Scaled coordinate of raw value `raw` on axis `axis` (0 x, 1 y, 2 z), as LAS readers
    /// compute it: `raw × scale + offset` in f64.
    #[inline]
    pub fn scaled(&self, axis: usize, raw: i32) -> f64 {
        f64::from(raw) * self.scale[axis] + self.offset[axis]
    }

    /// Header bytes for an output file with these counts and bounds.
    ///
    /// Everything else of the input header is kept byte for byte. `legacy`: whether to fill the
    /// legacy 32-bit counts (see [`Header::writes_legacy_counts`]).
    pub fn for_output(&self, out: &OutputHeader) -> Vec<u8> {
        let mut b = self.raw.clone();
        // Like PDAL: the file says who wrote it and when (the system id is kept).
        b[off::SOFTWARE..off::SOFTWARE + 32].copy_from_slice(&software_field());
        let (day, year) = creation_date();
        b[off::CREATION_DAY..off::CREATION_DAY + 2].copy_from_slice(&day.to_le_bytes());
        b[off::CREATION_YEAR..off::CREATION_YEAR + 2].copy_from_slice(&year.to_le_bytes());
        let fmt = self.point_format.id() | if out.compressed { 0x80 } else { 0 };
        b[off::POINT_FORMAT] = fmt;
        b[off::OFFSET_TO_POINTS..off::OFFSET_TO_POINTS + 4]
            .copy_from_slice(&out.offset_to_points.to_le_bytes());
        b[off::NUMBER_OF_VLRS..off::NUMBER_OF_VLRS + 4]
            .copy_from_slice(&out.number_of_vlrs.to_le_bytes());
        let legacy = self.writes_legacy_counts() && out.point_count <= u64::from(u32::MAX);
        let legacy_count = if legacy { out.point_count as u32 } else { 0 };
        b[off::LEGACY_COUNT..off::LEGACY_COUNT + 4].copy_from_slice(&legacy_count.to_le_bytes());
        for r in 0..5 {
            let v = if legacy {
                u32::try_from(out.returns[r]).unwrap_or(u32::MAX)
            } else {
                0
            };
            let at = off::LEGACY_RETURNS + 4 * r;
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        let put_f64 = |b: &mut Vec<u8>, at: usize, v: f64| {
            b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        };
        for axis in 0..3 {
            put_f64(&mut b, off::MAX_X + 16 * axis, out.max[axis]);
            put_f64(&mut b, off::MAX_X + 16 * axis + 8, out.min[axis]);
        }
        if self.version.1 >= 3 {
            b[off::START_OF_WAVEFORM..off::START_OF_WAVEFORM + 8]
                .copy_from_slice(&out.start_of_waveform.to_le_bytes());
        }
        if self.version.1 >= 4 {
            b[off::START_OF_FIRST_EVLR..off::START_OF_FIRST_EVLR + 8]
                .copy_from_slice(&out.start_of_first_evlr.to_le_bytes());
            b[off::NUMBER_OF_EVLRS..off::NUMBER_OF_EVLRS + 4]
                .copy_from_slice(&out.number_of_evlrs.to_le_bytes());
            b[off::POINT_COUNT..off::POINT_COUNT + 8]
                .copy_from_slice(&out.point_count.to_le_bytes());
            for r in 0..15 {
                let at = off::RETURNS + 8 * r;
                b[at..at + 8].copy_from_slice(&out.returns[r].to_le_bytes());
            }
        }
        b
    }

    /// This header with global-encoding bit 4 (the CRS is WKT) set.
    pub fn with_wkt_bit(&self) -> Header {
        let mut h = self.clone();
        h.global_encoding |= 0x10;
        h.raw[off::GLOBAL_ENCODING..off::GLOBAL_ENCODING + 2]
            .copy_from_slice(&h.global_encoding.to_le_bytes());
        h
    }

    /// Whether outputs fill the legacy 32-bit point counts: always before LAS 1.4; in LAS 1.4
    /// when the input did (a producer that left them 0 keeps them 0).
    pub fn writes_legacy_counts(&self) -> bool {
        self.version.1 < 4 || self.legacy_point_count != 0 || self.point_count == 0
    }
}

/// The fields of an output header that differ from the input's.
#[derive(Debug, Clone)]
pub struct OutputHeader {
    pub compressed: bool,
    pub offset_to_points: u32,
    pub number_of_vlrs: u32,
    pub point_count: u64,
    /// Points by return number 1–15.
    pub returns: [u64; 15],
    pub min: [f64; 3],
    pub max: [f64; 3],
    pub start_of_waveform: u64,
    pub start_of_first_evlr: u64,
    pub number_of_evlrs: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths_match_the_las_spec() {
        let lens: Vec<u16> = (0..=10).map(|i| PointFormat(i).base_len()).collect();
        assert_eq!(lens, [20, 28, 26, 34, 57, 63, 30, 36, 38, 59, 67]);
        assert!(PointFormat::new(11).is_none());
        // GPS time, RGB, NIR and wave packet offsets must add up to the record length.
        for id in 0..=10u8 {
            let f = PointFormat(id);
            let mut end = if f.is_extended() { 30 } else { 20 };
            if !f.is_extended() && f.gps_time_offset().is_some() {
                end += 8;
            }
            if let Some(o) = f.rgb_offset() {
                assert_eq!(o, end, "rgb of {id}");
                end += 6;
            }
            if let Some(o) = f.nir_offset() {
                assert_eq!(o, end, "nir of {id}");
                end += 2;
            }
            if let Some(o) = f.wave_packet_offset() {
                assert_eq!(o, end, "wave packet of {id}");
                end += 29;
            }
            assert_eq!(end, f.base_len() as usize, "format {id}");
        }
    }
}
