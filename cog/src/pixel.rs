//! Sample types: [`Pixel`] (the Rust types a raster can hold) and [`SampleType`] (what a file
//! stores).

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

/// The sample type of a band as stored in a file (GDAL's data type names in `Display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl SampleType {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::U32 | SampleType::I32 | SampleType::F32 => 4,
            SampleType::F64 => 8,
        }
    }

    /// True for f32 and f64.
    pub fn is_float(self) -> bool {
        matches!(self, SampleType::F32 | SampleType::F64)
    }

    /// TIFF SampleFormat: 1 unsigned, 2 signed, 3 IEEE float.
    pub fn tiff_sample_format(self) -> u16 {
        match self {
            SampleType::U8 | SampleType::U16 | SampleType::U32 => 1,
            SampleType::I8 | SampleType::I16 | SampleType::I32 => 2,
            SampleType::F32 | SampleType::F64 => 3,
        }
    }

    /// From TIFF BitsPerSample and SampleFormat.
    pub fn from_tiff(bits: u16, format: u16) -> Option<SampleType> {
        Some(match (bits, format) {
            (8, 1) => SampleType::U8,
            (8, 2) => SampleType::I8,
            (16, 1) => SampleType::U16,
            (16, 2) => SampleType::I16,
            (32, 1) => SampleType::U32,
            (32, 2) => SampleType::I32,
            (32, 3) => SampleType::F32,
            (64, 3) => SampleType::F64,
            _ => return None,
        })
    }

    /// GDAL's name of the type (`Byte`, `Int8`, `UInt16`, ... `Float64`).
    pub fn gdal_name(self) -> &'static str {
        match self {
            SampleType::U8 => "Byte",
            SampleType::I8 => "Int8",
            SampleType::U16 => "UInt16",
            SampleType::I16 => "Int16",
            SampleType::U32 => "UInt32",
            SampleType::I32 => "Int32",
            SampleType::F32 => "Float32",
            SampleType::F64 => "Float64",
        }
    }

    /// Parses a GDAL type name or a Rust type name (`uint16`, `u16`, `Float32`, ...).
    pub fn parse(s: &str) -> Option<SampleType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "byte" | "uint8" | "u8" => SampleType::U8,
            "int8" | "i8" => SampleType::I8,
            "uint16" | "u16" => SampleType::U16,
            "int16" | "i16" => SampleType::I16,
            "uint32" | "u32" => SampleType::U32,
            "int32" | "i32" => SampleType::I32,
            "float32" | "f32" => SampleType::F32,
            "float64" | "f64" => SampleType::F64,
            _ => return None,
        })
    }
}

impl std::fmt::Display for SampleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.gdal_name())
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A pixel type a [`crate::Raster`] can hold: u8, i8, u16, i16, u32, i32, f32 or f64.
///
/// Conversions between pixel types behave like Rust's `as` casts (floats to ints saturate,
/// NaN becomes 0), which is also how reading a file into another type converts values.
pub trait Pixel:
    Copy + Send + Sync + PartialEq + PartialOrd + Debug + Default + 'static + sealed::Sealed
{
    /// The stored sample type this Rust type corresponds to.
    const TYPE: SampleType;
    /// Converts like `v as Self`.
    fn from_u8(v: u8) -> Self;
    /// Converts like `v as Self`.
    fn from_i8(v: i8) -> Self;
    /// Converts like `v as Self`.
    fn from_u16(v: u16) -> Self;
    /// Converts like `v as Self`.
    fn from_i16(v: i16) -> Self;
    /// Converts like `v as Self`.
    fn from_u32(v: u32) -> Self;
    /// Converts like `v as Self`.
    fn from_i32(v: i32) -> Self;
    /// Converts like `v as Self`.
    fn from_f32(v: f32) -> Self;
    /// Converts like `v as Self`.
    fn from_f64(v: f64) -> Self;
    /// `self as f64`.
    fn to_f64(self) -> f64;
    /// `self as T` for any pixel type `T`.
    fn cast<T: Pixel>(self) -> T;
    /// Reads one sample from little-endian bytes (`bytes.len() == Self::TYPE.size()`).
    fn from_le_slice(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self`.
    fn write_le(self, out: &mut Vec<u8>);
    /// Writes `src` as little-endian bytes into `dst` (as many samples as both hold; a tight
    /// loop the compiler turns into a copy on little-endian machines).
    fn write_le_slice(src: &[Self], dst: &mut [u8]);
    /// Reads little-endian samples from `src` into `dst` (as many as both hold).
    fn read_le_slice(src: &[u8], dst: &mut [Self]);
    /// True for NaN (floats only).
    fn is_nan(self) -> bool;
}

macro_rules! pixel_impl {
    ($t:ty, $st:ident, $from:ident, $nan:expr) => {
        impl sealed::Sealed for $t {}
        impl Pixel for $t {
            const TYPE: SampleType = SampleType::$st;
            #[inline(always)]
            fn from_u8(v: u8) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i8(v: i8) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u16(v: u16) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i16(v: i16) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_u32(v: u32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn cast<T: Pixel>(self) -> T {
                T::$from(self)
            }
            #[inline(always)]
            fn from_le_slice(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(&bytes[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(b)
            }
            #[inline(always)]
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn write_le_slice(src: &[Self], dst: &mut [u8]) {
                for (d, s) in dst.chunks_exact_mut(std::mem::size_of::<$t>()).zip(src) {
                    d.copy_from_slice(&s.to_le_bytes());
                }
            }
            #[inline]
            fn read_le_slice(src: &[u8], dst: &mut [Self]) {
                for (d, s) in dst
                    .iter_mut()
                    .zip(src.chunks_exact(std::mem::size_of::<$t>()))
                {
                    let mut b = [0u8; std::mem::size_of::<$t>()];
                    b.copy_from_slice(s);
                    *d = <$t>::from_le_bytes(b);
                }
            }
            #[inline(always)]
            #[allow(clippy::redundant_closure_call)]
            fn is_nan(self) -> bool {
                ($nan)(self)
            }
        }
    };
}

pixel_impl!(u8, U8, from_u8, |_v: u8| false);
pixel_impl!(i8, I8, from_i8, |_v: i8| false);
pixel_impl!(u16, U16, from_u16, |_v: u16| false);
pixel_impl!(i16, I16, from_i16, |_v: i16| false);
pixel_impl!(u32, U32, from_u32, |_v: u32| false);
pixel_impl!(i32, I32, from_i32, |_v: i32| false);
pixel_impl!(f32, F32, from_f32, |v: f32| v.is_nan());
pixel_impl!(f64, F64, from_f64, |v: f64| v.is_nan());

/// Calls `$body` with the type alias `$T` bound to the Rust type of sample type `$st`.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_sample_type {
    ($st:expr, $T:ident => $body:expr) => {
        match $st {
            $crate::SampleType::U8 => {
                type $T = u8;
                $body
            }
            $crate::SampleType::I8 => {
                type $T = i8;
                $body
            }
            $crate::SampleType::U16 => {
                type $T = u16;
                $body
            }
            $crate::SampleType::I16 => {
                type $T = i16;
                $body
            }
            $crate::SampleType::U32 => {
                type $T = u32;
                $body
            }
            $crate::SampleType::I32 => {
                type $T = i32;
                $body
            }
            $crate::SampleType::F32 => {
                type $T = f32;
                $body
            }
            $crate::SampleType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_behave_like_as() {
        assert_eq!(<u8 as Pixel>::from_f32(300.7), 255);
        assert_eq!(<u8 as Pixel>::from_f32(f32::NAN), 0);
        assert_eq!(<i16 as Pixel>::from_u16(40000), 40000u16 as i16);
        assert_eq!(<f32 as Pixel>::from_f64(-9999.0), -9999.0f32);
        assert_eq!(300u16.cast::<u8>(), 300u16 as u8);
        assert_eq!((-1i8).cast::<u32>(), (-1i8) as u32);
    }
}
