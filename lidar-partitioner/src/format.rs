//! VLRs/EVLRs and CRS records of LAS files; the public header block and point record
//! layouts are [`pointcloud::header`]'s (re-exported here).

pub use pointcloud::header::{
    EVLR_HEADER, HEADER_SIZE_12, HEADER_SIZE_13, HEADER_SIZE_14, Header, OutputHeader, PointFormat,
    VLR_HEADER, le_f64, le_i32, le_u16, le_u32, le_u64, off, text,
};
use serde::{Deserialize, Serialize};

/// A variable length record (in the VLR area) or an extended VLR (after the points).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlr {
    /// The 2-byte reserved field, kept as read.
    pub reserved: u16,
    /// User id, 16 bytes, NUL padded.
    pub user_id: [u8; 16],
    /// Record id.
    pub record_id: u16,
    /// Description, 32 bytes, NUL padded.
    pub description: [u8; 32],
    /// Record data.
    pub data: Vec<u8>,
}

impl Vlr {
    /// The user id as text.
    pub fn user(&self) -> String {
        text(&self.user_id)
    }

    /// Whether this is the record `user`/`record_id`.
    pub fn is(&self, user: &str, record_id: u16) -> bool {
        self.record_id == record_id && self.user() == user
    }

    /// The LASzip VLR (`laszip encoded`, 22204).
    pub fn is_laszip(&self) -> bool {
        self.is("laszip encoded", 22204)
    }

    /// A COPC record (`copc` user id): meaningless once points are re-tiled.
    pub fn is_copc(&self) -> bool {
        self.user() == "copc"
    }

    /// A CRS record: GeoKeyDirectory (34735), GeoDoubleParams (34736), GeoAsciiParams
    /// (34737), OGC math transform WKT (2111) or coordinate system WKT (2112).
    pub fn is_crs(&self) -> bool {
        self.user() == "LASF_Projection"
            && matches!(self.record_id, 34735 | 34736 | 34737 | 2111 | 2112)
    }

    /// The waveform data packets EVLR (`LASF_Spec`, 65535).
    pub fn is_waveform_data(&self) -> bool {
        self.is("LASF_Spec", 65535)
    }

    /// Parses a VLR at the start of `b`; returns it and its total size.
    pub(crate) fn parse(b: &[u8]) -> Result<(Vlr, usize), String> {
        if b.len() < VLR_HEADER {
            return Err(format!(
                "{} bytes left, a VLR header needs {VLR_HEADER}",
                b.len()
            ));
        }
        let len = le_u16(b, 20) as usize;
        if b.len() < VLR_HEADER + len {
            return Err(format!(
                "record data of {len} bytes runs past the start of point data ({} bytes left)",
                b.len() - VLR_HEADER
            ));
        }
        Ok((
            Vlr::from_parts(b, 22, &b[VLR_HEADER..VLR_HEADER + len]),
            VLR_HEADER + len,
        ))
    }

    /// Builds a record from a (E)VLR header whose description starts at `desc_at`.
    pub(crate) fn from_parts(h: &[u8], desc_at: usize, data: &[u8]) -> Vlr {
        let mut user_id = [0u8; 16];
        user_id.copy_from_slice(&h[2..18]);
        let mut description = [0u8; 32];
        description.copy_from_slice(&h[desc_at..desc_at + 32]);
        Vlr {
            reserved: le_u16(h, 0),
            user_id,
            record_id: le_u16(h, 18),
            description,
            data: data.to_vec(),
        }
    }

    /// A VLR made from parts (user id and description are truncated to their field sizes).
    pub fn new(user: &str, record_id: u16, description: &str, data: Vec<u8>) -> Vlr {
        let mut user_id = [0u8; 16];
        let u = user.as_bytes();
        user_id[..u.len().min(16)].copy_from_slice(&u[..u.len().min(16)]);
        let mut desc = [0u8; 32];
        let d = description.as_bytes();
        desc[..d.len().min(32)].copy_from_slice(&d[..d.len().min(32)]);
        Vlr {
            reserved: 0,
            user_id,
            record_id,
            description: desc,
            data,
        }
    }

    /// Bytes of this record written as a VLR (data up to 65535 bytes).
    pub(crate) fn vlr_len(&self) -> usize {
        VLR_HEADER + self.data.len()
    }

    /// Appends this record as a VLR.
    pub(crate) fn write_vlr(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.user_id);
        out.extend_from_slice(&self.record_id.to_le_bytes());
        // VLR data fits in a u16: VLRs are only ever read from a u16 length field.
        out.extend_from_slice(&(self.data.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&self.description);
        out.extend_from_slice(&self.data);
    }

    /// Appends this record as an EVLR.
    pub(crate) fn write_evlr(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.user_id);
        out.extend_from_slice(&self.record_id.to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.description);
        out.extend_from_slice(&self.data);
    }
}

/// The CRS a file declares, as far as its VLRs say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrsInfo {
    /// EPSG code: when the header's WKT bit is set and there is a WKT (LAS 1.4: the WKT is
    /// then the CRS), the WKT root's own `AUTHORITY["EPSG",...]`/`ID["EPSG",...]` (none if it
    /// has none); else the GeoKeyDirectory's ProjectedCSTypeGeoKey or GeographicTypeGeoKey,
    /// falling back to the WKT's.
    pub epsg: Option<u32>,
    /// The OGC WKT of the coordinate system VLR/EVLR (2112), verbatim.
    pub wkt: Option<String>,
}

impl CrsInfo {
    /// Reads the CRS records among `records` (VLRs then EVLRs); `wkt_bit`: global encoding
    /// bit 4.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Vlr>, wkt_bit: bool) -> CrsInfo {
        let mut info = CrsInfo::default();
        let mut geokey_epsg = None;
        for r in records {
            if !r.is_crs() {
                continue;
            }
            match r.record_id {
                34735 => geokey_epsg = geokeys_epsg(&r.data),
                2112 => {
                    let end = r.data.iter().position(|&c| c == 0).unwrap_or(r.data.len());
                    let wkt = String::from_utf8_lossy(&r.data[..end]).trim().to_string();
                    if !wkt.is_empty() {
                        info.wkt = Some(wkt);
                    }
                }
                _ => {}
            }
        }
        let wkt_code = info.wkt.as_deref().and_then(wkt_epsg);
        info.epsg = if wkt_bit && info.wkt.is_some() {
            wkt_code
        } else {
            geokey_epsg.or(wkt_code)
        };
        info
    }
}

/// EPSG code of a GeoKeyDirectory (key 3072, else 2048), ignoring user-defined 32767.
fn geokeys_epsg(data: &[u8]) -> Option<u32> {
    if data.len() < 8 {
        return None;
    }
    let n = le_u16(data, 6) as usize;
    let mut projected = None;
    let mut geographic = None;
    for k in 0..n {
        let at = 8 + 8 * k;
        if at + 8 > data.len() {
            break;
        }
        let (id, loc, value) = (le_u16(data, at), le_u16(data, at + 2), le_u16(data, at + 6));
        if loc != 0 || value == 0 || value == 32767 {
            continue;
        }
        match id {
            3072 => projected = Some(u32::from(value)),
            2048 => geographic = Some(u32::from(value)),
            _ => {}
        }
    }
    projected.or(geographic)
}

/// The EPSG code of the root's own `AUTHORITY["EPSG","n"]` (WKT1) or `ID["EPSG",n]` (WKT2):
/// the one at bracket depth 1, not a nested datum's or unit's.
fn wkt_epsg(wkt: &str) -> Option<u32> {
    let b = wkt.as_bytes();
    let mut depth = 0i32;
    let mut found = None;
    for i in 0..b.len() {
        match b[i] {
            b'[' | b'(' => depth += 1,
            b']' | b')' => depth -= 1,
            _ => {}
        }
        if depth != 1 {
            continue;
        }
        for pat in ["AUTHORITY[\"EPSG\",", "ID[\"EPSG\","] {
            if wkt[i..].starts_with(pat) && (i == 0 || !b[i - 1].is_ascii_alphabetic()) {
                let digits: String = wkt[i + pat.len()..]
                    .trim_start_matches(['"', ' '])
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Ok(code) = digits.parse() {
                    found = Some(code);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkt_epsg_takes_the_outermost_authority() {
        let wkt = r#"PROJCS["ETRS89 / UTM zone 30N",GEOGCS["ETRS89",AUTHORITY["EPSG","4258"]],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AUTHORITY["EPSG","25830"]]"#;
        assert_eq!(wkt_epsg(wkt), Some(25830));
        // Only a nested authority: no code for the CRS itself.
        assert_eq!(
            wkt_epsg(r#"PROJCS["x",GEOGCS["y",AUTHORITY["EPSG","4258"]],UNIT["m",1]]"#),
            None
        );
        assert_eq!(wkt_epsg(r#"PROJCRS["x",ID["EPSG",32611]]"#), Some(32611));
        assert_eq!(wkt_epsg("LOCAL_CS[\"x\"]"), None);
    }

    #[test]
    fn geokeys_prefer_projected() {
        let mut d = Vec::new();
        for v in [1u16, 1, 0, 2, 2048, 0, 1, 4326, 3072, 0, 1, 25831] {
            d.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(geokeys_epsg(&d), Some(25831));
        assert_eq!(geokeys_epsg(&d[..16]), Some(4326));
    }
}
