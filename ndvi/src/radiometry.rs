//! Sentinel-2 L2A radiometry: digital numbers (DN) to surface reflectance.
//!
//! Reflectance = DN × scale + offset, with scale 0.0001 (1/`BOA_QUANTIFICATION_VALUE`) and,
//! from processing baseline 04.00 (products from 25 January 2022), `BOA_ADD_OFFSET` = −1000 DN,
//! i.e. an offset of −0.1 reflectance. Earth Search re-encoded part of the archive with the
//! offset already removed and flags it with `earthsearch:boa_offset_applied` (formerly
//! `sentinel:boa_offset_applied`); such DNs need no offset.

use serde::{Deserialize, Serialize};

/// Reflectance scale of Sentinel-2 L2A (and L1C) DNs: 1 / 10000.
pub const S2_SCALE: f64 = 1e-4;

/// `BOA_ADD_OFFSET` of processing baseline 04.00 and later, in DN.
pub const S2_BOA_ADD_OFFSET_DN: f64 = -1000.0;

/// Acquisition date from which ESA produced baseline 04.00 products.
pub const BASELINE_04_START: (i32, u32, u32) = (2022, 1, 25);

/// Linear conversion of a band's DNs to reflectance: `reflectance = DN × scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Radiometry {
    /// Reflectance per DN (0.0001 for Sentinel-2).
    pub scale: f64,
    /// Reflectance at DN 0 (−0.1 for baseline ≥ 04.00 DNs that still carry the offset).
    pub offset: f64,
}

impl Default for Radiometry {
    /// Sentinel-2 before baseline 04.00: scale 0.0001, no offset.
    fn default() -> Self {
        Radiometry::sentinel2(0.0)
    }
}

impl Radiometry {
    /// Sentinel-2 DNs with an additive offset given in DN (0 or −1000).
    pub fn sentinel2(offset_dn: f64) -> Self {
        Radiometry {
            scale: S2_SCALE,
            offset: offset_dn * S2_SCALE,
        }
    }

    /// Values that are reflectances already (scale 1, offset 0).
    pub fn identity() -> Self {
        Radiometry {
            scale: 1.0,
            offset: 0.0,
        }
    }

    /// The offset in DN (`offset / scale`), rounded to an integer when within 1e-6 of one.
    pub fn offset_dn(&self) -> f64 {
        let v = self.offset / self.scale;
        let r = v.round();
        if (v - r).abs() < 1e-6 { r } else { v }
    }

    /// Checks that the scale is finite and non-zero and the offset finite.
    pub fn validate(&self, what: &str) -> Result<(), crate::NdviError> {
        if !(self.scale.is_finite() && self.scale != 0.0 && self.offset.is_finite()) {
            return Err(crate::NdviError::InvalidParameter(format!(
                "{what}: radiometry scale {} / offset {} must be finite, and the scale non-zero",
                self.scale, self.offset
            )));
        }
        Ok(())
    }
}

/// A Sentinel-2 processing baseline such as `04.00`, compared as (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcessingBaseline {
    pub major: u32,
    pub minor: u32,
}

impl ProcessingBaseline {
    /// Baseline 04.00, the first with `BOA_ADD_OFFSET`.
    pub const B0400: ProcessingBaseline = ProcessingBaseline { major: 4, minor: 0 };

    /// Parses `"04.00"`, `"4.0"`, `"02.14"` or `"N0214"` (the form in product names).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(digits) = s.strip_prefix('N')
            && digits.len() == 4
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(ProcessingBaseline {
                major: digits[..2].parse().ok()?,
                minor: digits[2..].parse().ok()?,
            });
        }
        let (a, b) = s.split_once('.').unwrap_or((s, "0"));
        if a.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if b.is_empty() || !b.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(ProcessingBaseline {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// True from baseline 04.00 on, whose L2A DNs carry `BOA_ADD_OFFSET` = −1000.
    pub fn has_boa_offset(&self) -> bool {
        *self >= ProcessingBaseline::B0400
    }
}

impl std::fmt::Display for ProcessingBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}.{:02}", self.major, self.minor)
    }
}

/// The DN offset to apply to a scene's L2A bands, from what its metadata says.
///
/// - baseline < 04.00: 0;
/// - baseline ≥ 04.00: 0 when the archive says the offset was already removed
///   (`boa_offset_applied`), else `asset_offset_dn` when the STAC asset gives a non-zero one,
///   else −1000;
/// - baseline unknown: 0 if the offset was applied; the STAC asset's offset if given; 0 for
///   acquisitions before 25 January 2022; otherwise `None` (unknown: the caller must say).
pub fn s2_offset_dn(
    baseline: Option<ProcessingBaseline>,
    boa_offset_applied: Option<bool>,
    asset_offset_dn: Option<f64>,
    acquired: Option<chrono::NaiveDate>,
) -> Option<f64> {
    match baseline {
        Some(pb) if !pb.has_boa_offset() => Some(0.0),
        Some(_) => {
            if boa_offset_applied == Some(true) {
                Some(0.0)
            } else {
                match asset_offset_dn {
                    Some(o) if o != 0.0 => Some(o),
                    _ => Some(S2_BOA_ADD_OFFSET_DN),
                }
            }
        }
        None => {
            if boa_offset_applied == Some(true) {
                return Some(0.0);
            }
            if let Some(o) = asset_offset_dn {
                return Some(o);
            }
            let (y, m, d) = BASELINE_04_START;
            let start = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
            match acquired {
                Some(date) if date < start => Some(0.0),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn parses_baselines() {
        let pb = |s| ProcessingBaseline::parse(s).unwrap();
        assert_eq!(pb("04.00"), ProcessingBaseline { major: 4, minor: 0 });
        assert_eq!(
            pb("02.14"),
            ProcessingBaseline {
                major: 2,
                minor: 14
            }
        );
        assert_eq!(pb("N0509"), ProcessingBaseline { major: 5, minor: 9 });
        assert_eq!(pb("5"), ProcessingBaseline { major: 5, minor: 0 });
        assert!(pb("04.00").has_boa_offset());
        assert!(pb("05.10").has_boa_offset());
        assert!(!pb("03.01").has_boa_offset());
        assert_eq!(pb("4.0").to_string(), "04.00");
        for bad in ["", "x", "04.", ".1", "N04", "4.a"] {
            assert_eq!(ProcessingBaseline::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn offset_rules() {
        let pb = ProcessingBaseline::parse;
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        // Before 04.00: never an offset, whatever else says.
        assert_eq!(
            s2_offset_dn(pb("02.14"), Some(false), Some(-1000.0), None),
            Some(0.0)
        );
        // 04.00 with DNs as ESA made them.
        assert_eq!(
            s2_offset_dn(pb("04.00"), Some(false), None, None),
            Some(-1000.0)
        );
        assert_eq!(
            s2_offset_dn(pb("04.00"), None, Some(0.0), None),
            Some(-1000.0)
        );
        // Earth Search removed the offset already.
        assert_eq!(
            s2_offset_dn(pb("04.00"), Some(true), Some(-1000.0), None),
            Some(0.0)
        );
        // Unknown baseline: the asset's offset, the date, or unknown.
        assert_eq!(s2_offset_dn(None, None, Some(-1000.0), None), Some(-1000.0));
        assert_eq!(s2_offset_dn(None, None, None, d(2021, 6, 1)), Some(0.0));
        assert_eq!(s2_offset_dn(None, None, None, d(2022, 6, 1)), None);
        assert_eq!(s2_offset_dn(None, None, None, None), None);
        assert_eq!(
            s2_offset_dn(None, Some(true), None, d(2023, 1, 1)),
            Some(0.0)
        );
    }

    #[test]
    fn radiometry_offsets() {
        let r = Radiometry::sentinel2(-1000.0);
        assert!((r.offset + 0.1).abs() < 1e-15);
        assert_eq!(r.offset_dn(), -1000.0);
        assert_eq!(Radiometry::default().offset_dn(), 0.0);
        assert!(
            Radiometry {
                scale: 0.0,
                offset: 0.0
            }
            .validate("x")
            .is_err()
        );
        assert!(
            Radiometry {
                scale: 1e-4,
                offset: f64::NAN
            }
            .validate("x")
            .is_err()
        );
    }
}
