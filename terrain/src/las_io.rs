//! Reading LAS/LAZ into a [`PointCloud`] and writing re-classified copies.
//!
//! Files are read through [`cloud::Store`] (local, `s3://`, `https://`), decoded with the
//! `las` crate (LAZ decompressed on all cores) in bounded chunks: the header's point count
//! is checked against the file size before anything is allocated from it.

use std::io::Cursor;

use bytes::Bytes;
use cloud::Store;
use cog::Crs;
use las::{PointData, Reader};

use crate::error::{Result, TerrainError};
use crate::points::{FLAG_KEYPOINT, FLAG_OVERLAP, FLAG_SYNTHETIC, FLAG_WITHHELD, PointCloud};

/// Points decoded per chunk.
const CHUNK: u64 = 1 << 20;

/// Most points one task reads (positions are kept as `u32`).
pub const MAX_POINTS: u64 = u32::MAX as u64 - 1;

/// A decoded LAS/LAZ file.
#[derive(Debug)]
pub struct LasFile {
    /// The URI it was read from.
    pub uri: String,
    /// Its header (VLRs included).
    pub header: las::Header,
    /// The points, in file order.
    pub cloud: PointCloud,
    /// The CRS from the WKT or GeoTIFF VLRs (unknown when the file has none).
    pub crs: Crs,
    /// The raw point records in chunks, when asked for (to write a re-classified copy).
    pub raw: Vec<PointData>,
}

/// Reads `uri` (LAS or LAZ, any version and point format). With `keep_raw` the raw records
/// are kept for [`write_reclassified`].
pub fn read_las(store: &Store, uri: &str, keep_raw: bool) -> Result<LasFile> {
    let bytes = store.get(uri)?;
    decode_las(uri, bytes, keep_raw)
}

/// Decodes LAS/LAZ bytes (see [`read_las`]).
pub fn decode_las(uri: &str, bytes: Bytes, keep_raw: bool) -> Result<LasFile> {
    if bytes.len() < 227 || &bytes[0..4] != b"LASF" {
        return Err(TerrainError::las(
            uri,
            format!(
                "not a LAS/LAZ file ({} bytes, no LASF signature)",
                bytes.len()
            ),
        ));
    }
    // The one header validation of every geobutton crate (signature, version, header size,
    // point format, record length, offsets, positive scales): a file the partitioner
    // refuses is refused here too.
    pointcloud::Header::parse(&bytes)
        .map_err(|e| TerrainError::las(uri, format!("invalid LAS header: {e}")))?;
    let file_len = bytes.len() as u64;
    let offset_to_points = u64::from(u32::from_le_bytes([
        bytes[96], bytes[97], bytes[98], bytes[99],
    ]));
    let mut reader = Reader::new(Cursor::new(bytes))
        .map_err(|e| TerrainError::las(uri, format!("invalid LAS header: {e}")))?;
    let header = reader.header().clone();
    let n = header.number_of_points();
    let record_len = u64::from(header.point_format().len());
    if n > MAX_POINTS {
        return Err(TerrainError::TooLarge(format!(
            "{uri}: {n} points exceed the limit of {MAX_POINTS} per task"
        )));
    }
    if !header.point_format().is_compressed {
        let available = file_len.saturating_sub(offset_to_points);
        if n.saturating_mul(record_len) > available {
            return Err(TerrainError::las(
                uri,
                format!(
                    "truncated: the header announces {n} points of {record_len} bytes but only \
                     {available} bytes follow the point data offset {offset_to_points}"
                ),
            ));
        }
    } else if n > file_len.saturating_mul(64) {
        return Err(TerrainError::las(
            uri,
            format!("the header announces {n} points, impossible in a {file_len}-byte LAZ file"),
        ));
    }
    let format = *header.point_format();
    let transforms = *header.transforms();
    let mut cloud = PointCloud::with_capacity(n as usize);
    let mut raw = Vec::new();
    let mut read = 0u64;
    while read < n {
        let mut chunk = reader
            .read_points(CHUNK.min(n - read))
            .map_err(|e| TerrainError::las(uri, format!("reading point {read}: {e}")))?;
        if chunk.is_empty() {
            return Err(TerrainError::las(
                uri,
                format!("truncated: {read} of {n} points could be read"),
            ));
        }
        append_records(&mut cloud, &chunk, format.is_extended, &transforms, read);
        read += chunk.len() as u64;
        if keep_raw {
            raw.push(chunk);
        } else {
            // Give the slab back early; the next read allocates its own.
            let _ = chunk.resize_for(0);
        }
    }
    let crs = crs_of(&header);
    Ok(LasFile {
        uri: uri.to_string(),
        header,
        cloud,
        crs,
        raw,
    })
}

fn append_records(
    cloud: &mut PointCloud,
    chunk: &PointData,
    extended: bool,
    t: &las::Vector<las::Transform>,
    first_index: u64,
) {
    let rec = chunk.record_len();
    for (k, r) in chunk.raw_bytes().chunks_exact(rec).enumerate() {
        let xi = i32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        let yi = i32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let zi = i32::from_le_bytes([r[8], r[9], r[10], r[11]]);
        let (rn, nr, class, flags) = if extended {
            let f = r[15] & 0x0F;
            let flags = (if f & 1 != 0 { FLAG_SYNTHETIC } else { 0 })
                | (if f & 2 != 0 { FLAG_KEYPOINT } else { 0 })
                | (if f & 4 != 0 { FLAG_WITHHELD } else { 0 })
                | (if f & 8 != 0 { FLAG_OVERLAP } else { 0 });
            (r[14] & 15, r[14] >> 4, r[16], flags)
        } else {
            let b = r[15];
            let flags = (if b & 0x20 != 0 { FLAG_SYNTHETIC } else { 0 })
                | (if b & 0x40 != 0 { FLAG_KEYPOINT } else { 0 })
                | (if b & 0x80 != 0 { FLAG_WITHHELD } else { 0 });
            (r[14] & 7, (r[14] >> 3) & 7, b & 0x1F, flags)
        };
        cloud.x.push(t.x.direct(xi));
        cloud.y.push(t.y.direct(yi));
        cloud.z.push(t.z.direct(zi));
        cloud.class.push(class);
        cloud.returns.push(rn | (nr << 4));
        cloud.flags.push(flags);
        cloud.index.push((first_index + k as u64) as u32);
    }
}

/// The CRS recorded in a LAS header, read as every stage reads it
/// ([`pointcloud::crs::CrsInfo::from_records`]): with the WKT bit (LAS 1.4), the WKT record and
/// its root's EPSG code; else the GeoTIFF projected (or geographic) key's code, or the WKT's.
pub fn crs_of(header: &las::Header) -> Crs {
    let records = header
        .all_vlrs()
        .map(|v| (v.user_id.as_str(), v.record_id, v.data.as_slice()));
    let info = pointcloud::crs::CrsInfo::from_records(records, header.has_wkt_crs());
    Crs {
        epsg: info.epsg,
        wkt: info.wkt,
    }
}

/// Writes a copy of `file` (LAS, or LAZ when `compressed`) whose classification of point `i`
/// (file order) is `classes[i]`; everything else — header fields, VLRs, EVLRs, other
/// attributes, flags — is kept. Returns the encoded file.
pub fn write_reclassified(file: &LasFile, classes: &[u8], compressed: bool) -> Result<Vec<u8>> {
    let uri = &file.uri;
    let n: usize = file.raw.iter().map(|c| c.len()).sum();
    if n != classes.len() || n != file.cloud.len() {
        return Err(TerrainError::las(
            uri,
            "internal: the raw records were not kept for writing",
        ));
    }
    let extended = file.header.point_format().is_extended;
    let mut header = file.header.clone();
    let mut format = *header.point_format();
    format.is_compressed = compressed;
    if !extended && classes.iter().any(|&c| c > 31) {
        return Err(TerrainError::las(
            uri,
            "classes above 31 need point format 6 or higher",
        ));
    }
    header = {
        let mut builder = las::Builder::from(header);
        builder.point_format = format;
        // Like PDAL: the file says who wrote it and when.
        builder.generating_software = pointcloud::header::GENERATING_SOFTWARE.to_string();
        builder.date = Some(pointcloud::header::today());
        // The writer adds its own LASzip VLR when compressing; a stale one must not stay.
        builder
            .vlrs
            .retain(|v| !(v.user_id == "laszip encoded" && v.record_id == 22204));
        builder
            .into_header()
            .map_err(|e| TerrainError::las(uri, format!("cannot build the output header: {e}")))?
    };
    let mut writer = las::Writer::new(Cursor::new(Vec::new()), header)
        .map_err(|e| TerrainError::las(uri, format!("cannot start writing: {e}")))?;
    let mut offset = 0usize;
    for chunk in &file.raw {
        let mut chunk = chunk.clone();
        let rec = chunk.record_len();
        let len = chunk.len();
        let bytes = chunk.resize_for(len);
        for (k, r) in bytes.chunks_exact_mut(rec).enumerate() {
            let c = classes[offset + k];
            if extended {
                r[16] = c;
            } else {
                r[15] = (r[15] & 0xE0) | (c & 0x1F);
            }
        }
        offset += len;
        writer
            .write_points(&chunk)
            .map_err(|e| TerrainError::las(uri, format!("writing points: {e}")))?;
    }
    let cursor = writer
        .into_inner()
        .map_err(|e| TerrainError::las(uri, format!("finishing the file: {e}")))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A LAS 1.2 header (or 1.4, point format 6) with a GeoKeyDirectory naming `key_code`
    /// and a WKT record naming `wkt_code`.
    fn header_with_both_records(key_code: u16, wkt_code: u32, las14: bool) -> las::Header {
        let mut b = las::Builder::from(if las14 { (1, 4) } else { (1, 2) });
        if las14 {
            b.point_format = las::point::Format::new(6).unwrap();
        }
        let keys: Vec<u8> = [1u16, 1, 0, 1, 3072, 0, 1, key_code]
            .iter()
            .flat_map(|k| k.to_le_bytes())
            .collect();
        let wkt = format!(r#"PROJCS["x",AUTHORITY["EPSG","{wkt_code}"]]"#);
        for (record_id, data) in [(34735, keys), (2112, wkt.into_bytes())] {
            b.vlrs.push(las::Vlr {
                user_id: "LASF_Projection".into(),
                record_id,
                description: String::new(),
                data,
            });
        }
        b.into_header().unwrap()
    }

    /// terrain reads a file's CRS as the lidar-partitioner does: the GeoKeys are the CRS of
    /// a LAS 1.2 file, the WKT that of a LAS 1.4 file with the WKT bit.
    #[test]
    fn crs_records_read_as_the_partitioner_reads_them() {
        let old = header_with_both_records(25830, 25831, false);
        assert!(!old.has_wkt_crs());
        assert_eq!(crs_of(&old).epsg, Some(25830));
        assert!(crs_of(&old).wkt.is_some_and(|w| w.contains("25831")));
        let new = header_with_both_records(25830, 25831, true);
        assert!(new.has_wkt_crs());
        assert_eq!(crs_of(&new).epsg, Some(25831));
        assert!(!crs_of(&new).is_geographic());
    }

    #[test]
    fn bad_bytes_are_errors() {
        for b in [&b""[..], &b"LASF"[..], &[0u8; 400][..]] {
            let e = decode_las("x.las", Bytes::copy_from_slice(b), false).unwrap_err();
            assert!(matches!(e, TerrainError::Las { .. }), "{e}");
            assert!(e.to_string().starts_with("x.las: "), "{e}");
        }
    }
}
