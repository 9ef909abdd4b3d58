//! VLRs/EVLRs of LAS files; the public header block, point record layouts and CRS records
//! are [`pointcloud`]'s (re-exported here).

pub use pointcloud::crs::CrsInfo;
pub use pointcloud::header::{
    EVLR_HEADER, HEADER_SIZE_12, HEADER_SIZE_13, HEADER_SIZE_14, Header, OutputHeader, PointFormat,
    VLR_HEADER, le_f64, le_i32, le_u16, le_u32, le_u64, off, text,
};

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
