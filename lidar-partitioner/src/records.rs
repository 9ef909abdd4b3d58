//! Raw point records: a whole file's records in memory ([`PointRecords`]) and a typed view
//! of one record ([`PointRef`]) that decodes fields from their fixed offsets (LAS 1.4 R15
//! tables 7–17) without building a point struct.
//!
//! ```no_run
//! # fn main() -> Result<(), lidar_partitioner::PartitionError> {
//! let store = cloud::Store::from_env();
//! let cloud = lidar_partitioner::PointRecords::read(&store, "s3://bucket/tile.laz")?;
//! let ground = cloud.iter().filter(|p| p.classification() == 2 && !p.withheld()).count();
//! let [x, y, z] = cloud.point(0).xyz();
//! # let _ = (ground, x, y, z);
//! # Ok(()) }
//! ```

use cloud::Store;

use crate::error::{PartitionError, Result};
use crate::format::{Header, PointFormat, le_i32, le_u16};
use crate::reader::{LasFile, LasMeta};

/// Every point record of a LAS/LAZ file in memory, raw (`record_len` bytes each, extra
/// bytes included), with the file's header, VLRs and EVLRs.
#[derive(Debug, Clone)]
pub struct PointRecords {
    meta: LasMeta,
    data: Vec<u8>,
    rec: usize,
}

impl PointRecords {
    pub(crate) fn new(meta: LasMeta, data: Vec<u8>) -> Self {
        let rec = meta.header.record_len() as usize;
        PointRecords { meta, data, rec }
    }

    /// Reads a LAS/LAZ/COPC file from a store URI (LAZ chunks decompressed in parallel).
    pub fn read(store: &Store, uri: &str) -> Result<PointRecords> {
        LasFile::open(store, uri)?.read_all()
    }

    /// Records from parts: `data` must hold whole records of the header's record length.
    pub fn from_parts(meta: LasMeta, data: Vec<u8>) -> Result<PointRecords> {
        let rec = meta.header.record_len() as usize;
        if !data.len().is_multiple_of(rec) {
            return Err(PartitionError::InvalidParams(format!(
                "{} bytes are not whole {rec}-byte point records",
                data.len()
            )));
        }
        Ok(PointRecords::new(meta, data))
    }

    /// Header, VLRs and EVLRs of the file.
    pub fn meta(&self) -> &LasMeta {
        &self.meta
    }
    /// The public header block (its point count and bounds are the file's, as read).
    pub fn header(&self) -> &Header {
        &self.meta.header
    }
    /// Number of records.
    pub fn len(&self) -> usize {
        self.data.len() / self.rec
    }
    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Bytes per record.
    pub fn record_len(&self) -> usize {
        self.rec
    }
    /// All records, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }
    /// Mutable records (e.g. to set flags before writing).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
    /// The metadata and the record bytes.
    pub fn into_parts(self) -> (LasMeta, Vec<u8>) {
        (self.meta, self.data)
    }
    /// Raw bytes of record `i`.
    pub fn record(&self, i: usize) -> &[u8] {
        &self.data[i * self.rec..(i + 1) * self.rec]
    }
    /// A typed view of record `i`.
    pub fn point(&self, i: usize) -> PointRef<'_> {
        PointRef {
            rec: self.record(i),
            header: &self.meta.header,
        }
    }
    /// Typed views of all records, in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PointRef<'_>> + '_ {
        let header = &self.meta.header;
        self.data
            .chunks_exact(self.rec)
            .map(move |rec| PointRef { rec, header })
    }

    /// Writes these records as a complete LAS (or LAZ when `compressed`) file to `uri`,
    /// atomically, with the header's point counts, return counts and bounds recomputed and
    /// every other header field, VLR and EVLR kept. Returns the bytes written.
    pub fn write(&self, store: &Store, uri: &str, compressed: bool) -> Result<u64> {
        let src = crate::writer::SliceRecords {
            data: &self.data,
            rec: self.rec,
        };
        let stats = crate::writer::Stats::scan(&self.data, self.rec, self.header().point_format());
        let written =
            crate::writer::write_file(store, uri, &self.meta, &src, Some(stats), compressed, None)?;
        Ok(written.bytes)
    }
}

/// A typed, zero-copy view of one raw point record.
///
/// Coordinates are in the file's CRS units; `raw_*` are the stored integers.
#[derive(Debug, Clone, Copy)]
pub struct PointRef<'a> {
    rec: &'a [u8],
    header: &'a Header,
}

impl<'a> PointRef<'a> {
    /// A view of `rec`, a record laid out as `header` says.
    pub fn new(rec: &'a [u8], header: &'a Header) -> Self {
        PointRef { rec, header }
    }
    /// The raw record bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.rec
    }
    /// The point format of the record.
    pub fn format(&self) -> PointFormat {
        self.header.point_format()
    }
    /// Stored integer X, Y, Z.
    #[inline]
    pub fn raw_xyz(&self) -> [i32; 3] {
        [
            le_i32(self.rec, 0),
            le_i32(self.rec, 4),
            le_i32(self.rec, 8),
        ]
    }
    /// Scaled x, y, z (`raw × scale + offset`).
    #[inline]
    pub fn xyz(&self) -> [f64; 3] {
        let r = self.raw_xyz();
        [
            self.header.scaled(0, r[0]),
            self.header.scaled(1, r[1]),
            self.header.scaled(2, r[2]),
        ]
    }
    /// Scaled x.
    pub fn x(&self) -> f64 {
        self.header.scaled(0, le_i32(self.rec, 0))
    }
    /// Scaled y.
    pub fn y(&self) -> f64 {
        self.header.scaled(1, le_i32(self.rec, 4))
    }
    /// Scaled z.
    pub fn z(&self) -> f64 {
        self.header.scaled(2, le_i32(self.rec, 8))
    }
    /// Pulse return magnitude.
    pub fn intensity(&self) -> u16 {
        le_u16(self.rec, 12)
    }
    /// Return number (1–5 legacy, 1–15 for formats 6–10; 0 when unset).
    pub fn return_number(&self) -> u8 {
        self.rec[14] & self.format().return_number_mask()
    }
    /// Number of returns of the pulse.
    pub fn number_of_returns(&self) -> u8 {
        if self.format().is_extended() {
            self.rec[14] >> 4
        } else {
            (self.rec[14] >> 3) & 0x07
        }
    }
    /// Whether this is the last (or only) return of its pulse.
    pub fn is_last_return(&self) -> bool {
        self.return_number() >= self.number_of_returns()
    }
    /// ASPRS classification (0–31 legacy, 0–255 for formats 6–10).
    pub fn classification(&self) -> u8 {
        if self.format().is_extended() {
            self.rec[16]
        } else {
            self.rec[15] & 0x1F
        }
    }
    /// Synthetic flag.
    pub fn synthetic(&self) -> bool {
        if self.format().is_extended() {
            self.rec[15] & 0x01 != 0
        } else {
            self.rec[15] & 0x20 != 0
        }
    }
    /// Key-point flag.
    pub fn key_point(&self) -> bool {
        if self.format().is_extended() {
            self.rec[15] & 0x02 != 0
        } else {
            self.rec[15] & 0x40 != 0
        }
    }
    /// Withheld flag (the partitioner marks buffer points with it).
    pub fn withheld(&self) -> bool {
        let (byte, mask) = self.format().withheld_mask();
        self.rec[byte] & mask != 0
    }
    /// Overlap flag (formats 6–10; class 12 for formats 0–5).
    pub fn overlap(&self) -> bool {
        if self.format().is_extended() {
            self.rec[15] & 0x08 != 0
        } else {
            self.classification() == 12
        }
    }
    /// Scanner channel (formats 6–10; 0 otherwise).
    pub fn scanner_channel(&self) -> u8 {
        if self.format().is_extended() {
            (self.rec[15] >> 4) & 0x03
        } else {
            0
        }
    }
    /// Scan direction flag.
    pub fn scan_direction(&self) -> bool {
        if self.format().is_extended() {
            self.rec[15] & 0x40 != 0
        } else {
            self.rec[14] & 0x40 != 0
        }
    }
    /// Edge of flight line flag.
    pub fn edge_of_flight_line(&self) -> bool {
        if self.format().is_extended() {
            self.rec[15] & 0x80 != 0
        } else {
            self.rec[14] & 0x80 != 0
        }
    }
    /// User data byte.
    pub fn user_data(&self) -> u8 {
        self.rec[17]
    }
    /// Scan angle in degrees (legacy: the signed byte; formats 6–10: 0.006° units).
    pub fn scan_angle_degrees(&self) -> f64 {
        if self.format().is_extended() {
            f64::from(le_u16(self.rec, 18) as i16) * 0.006
        } else {
            f64::from(self.rec[16] as i8)
        }
    }
    /// Point source id (flight line).
    pub fn point_source_id(&self) -> u16 {
        if self.format().is_extended() {
            le_u16(self.rec, 20)
        } else {
            le_u16(self.rec, 18)
        }
    }
    /// GPS time, if the format has it.
    pub fn gps_time(&self) -> Option<f64> {
        self.format().gps_time_offset().map(|o| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.rec[o..o + 8]);
            f64::from_le_bytes(b)
        })
    }
    /// Red, green, blue, if the format has colour.
    pub fn rgb(&self) -> Option<[u16; 3]> {
        self.format().rgb_offset().map(|o| {
            [
                le_u16(self.rec, o),
                le_u16(self.rec, o + 2),
                le_u16(self.rec, o + 4),
            ]
        })
    }
    /// Near infrared, formats 8 and 10.
    pub fn nir(&self) -> Option<u16> {
        self.format().nir_offset().map(|o| le_u16(self.rec, o))
    }
    /// The bytes after the format's standard fields (described by the extra-bytes VLR).
    pub fn extra_bytes(&self) -> &'a [u8] {
        &self.rec[self.format().base_len() as usize..]
    }
}

/// Sets or clears the withheld flag of a raw record of format `fmt`.
#[inline]
pub(crate) fn set_withheld(rec: &mut [u8], fmt: PointFormat, on: bool) {
    let (byte, mask) = fmt.withheld_mask();
    if on {
        rec[byte] |= mask;
    } else {
        rec[byte] &= !mask;
    }
}
