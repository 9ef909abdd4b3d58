//! Helpers shared by the integration tests: fixture paths, GDAL's checksum and statistics,
//! running GDAL's command-line tools.

use std::path::Path;
use std::process::Command;

pub use testkit::fixtures::{data, data_str};

/// GDAL's `GDALChecksumImage` over a band read as f64, for a band of sample type `float`.
/// The prime used for a pixel depends only on its position, so the sum is order-free.
pub fn gdal_checksum(values: impl Iterator<Item = f64>, width: usize, float: bool) -> u32 {
    const PRIMES: [i64; 11] = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43];
    let mut sum: i64 = 0;
    for (i, v) in values.enumerate() {
        let _ = width;
        let n: i32 = if float {
            if v.is_nan() || v.is_infinite() {
                i32::MIN
            } else {
                let d = v + 0.5;
                if d < -2147483647.0 {
                    -2147483647
                } else if d > 2147483647.0 {
                    2147483647
                } else {
                    d.floor() as i32
                }
            }
        } else if v > i32::MAX as f64 {
            i32::MAX
        } else {
            v as i32
        };
        sum = (sum + (n as i64 % PRIMES[i % 11])) & 0xffff;
    }
    sum as u32
}

/// Population statistics over valid pixels (not nodata, not NaN): count, min, max, mean, std,
/// in one pass (Welford's update).
pub fn stats(values: impl Iterator<Item = f64>, nodata: Option<f64>) -> (u64, f64, f64, f64, f64) {
    let (mut n, mut mean, mut m2) = (0u64, 0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| !v.is_nan() && nodata.is_none_or(|nd| *v != nd)) {
        n += 1;
        let d = v - mean;
        mean += d / n as f64;
        m2 += d * (v - mean);
        min = min.min(v);
        max = max.max(v);
    }
    if n == 0 {
        return (0, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    (n, min, max, mean, (m2 / n as f64).sqrt())
}

/// One row of a `REFERENCE_GDAL_STATS.tsv`.
#[derive(Debug, Clone)]
pub struct RefRow {
    pub file: String,
    pub band: usize,
    pub dtype: String,
    pub width: u64,
    pub height: u64,
    pub block: (u64, u64),
    pub nodata: Option<f64>,
    pub checksum: u32,
    pub valid: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub compression: String,
    pub predictor: String,
    pub overviews: Vec<(u64, u64)>,
}

fn dims(s: &str) -> (u64, u64) {
    let (a, b) = s.split_once('x').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

pub fn reference_rows(dir: &str) -> Vec<RefRow> {
    let text = std::fs::read_to_string(data(dir).join("REFERENCE_GDAL_STATS.tsv")).unwrap();
    let opt = |s: &str| {
        if s.is_empty() {
            None
        } else {
            Some(s.parse::<f64>().unwrap())
        }
    };
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            RefRow {
                file: f[0].to_string(),
                band: f[1].parse().unwrap(),
                dtype: f[2].to_string(),
                width: dims(f[3]).0,
                height: dims(f[3]).1,
                block: dims(f[4]),
                nodata: opt(f[5]),
                checksum: f[6].parse().unwrap(),
                valid: f[7].parse().unwrap(),
                min: opt(f[8]),
                max: opt(f[9]),
                mean: opt(f[10]),
                std: opt(f[11]),
                compression: f.get(12).copied().unwrap_or("").to_string(),
                predictor: f.get(13).copied().unwrap_or("").to_string(),
                overviews: f
                    .get(14)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split(',').map(dims).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Runs a GDAL tool, panicking with its stderr on failure.
pub fn run(cmd: &str, args: &[&str]) -> String {
    testkit::process::stdout_of(Command::new(cmd).args(args))
        .unwrap_or_else(|e| panic!("{e} (GDAL's tools come with gdal-bin)"))
}

/// `gdalinfo -json` of a file.
pub fn gdalinfo_json(path: &str) -> serde_json::Value {
    serde_json::from_str(&run(
        "gdalinfo",
        &["-json", "--config", "GDAL_PAM_ENABLED", "NO", path],
    ))
    .unwrap()
}

/// A window of one band as GDAL reads it: `gdal_translate -srcwin` to ENVI (raw) and the
/// samples converted to f64. For an overview level (1-based), GDAL's `-ovr` copies the whole
/// level and the window is cut from it.
pub fn gdal_window(
    path: &str,
    band: usize,
    col: u64,
    row: u64,
    w: u64,
    h: u64,
    ovr: Option<usize>,
) -> Vec<f64> {
    match ovr {
        None => gdal_envi(path, band, Some((col, row, w, h)), None).0,
        Some(level) => {
            let (all, lw, _) = gdal_envi(path, band, None, Some(level));
            let mut out = Vec::with_capacity((w * h) as usize);
            for r in row..row + h {
                for c in col..col + w {
                    out.push(all[(r * lw + c) as usize]);
                }
            }
            out
        }
    }
}

/// Runs `gdal_translate -of ENVI` and returns (samples, width, height).
pub fn gdal_envi(
    path: &str,
    band: usize,
    srcwin: Option<(u64, u64, u64, u64)>,
    ovr: Option<usize>,
) -> (Vec<f64>, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.img");
    let b = band.to_string();
    let mut args: Vec<String> = ["-q", "-of", "ENVI", "-b", &b]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(level) = ovr {
        args.extend(["-ovr".to_string(), (level - 1).to_string()]);
    }
    if let Some((c, r, w, h)) = srcwin {
        args.extend([
            "-srcwin".to_string(),
            c.to_string(),
            r.to_string(),
            w.to_string(),
            h.to_string(),
        ]);
    }
    args.extend([path.to_string(), out.to_str().unwrap().to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run("gdal_translate", &a);
    let hdr = std::fs::read_to_string(dir.path().join("w.hdr")).unwrap();
    let field = |k: &str| -> u64 {
        hdr.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim().trim_start_matches('=').trim().to_string())
            })
            .unwrap()
            .parse()
            .unwrap()
    };
    let dt = field("data type") as u32;
    let (w, h) = (field("samples"), field("lines"));
    let big = hdr.contains("byte order = 1");
    let raw = std::fs::read(&out).unwrap();
    let size = match dt {
        1 => 1,
        2 | 12 => 2,
        3 | 4 | 13 => 4,
        5 => 8,
        other => panic!("ENVI data type {other}"),
    };
    assert_eq!(
        raw.len() as u64,
        w * h * size as u64,
        "ENVI size of {path} band {band}: {hdr}"
    );
    let vals = raw
        .chunks_exact(size)
        .map(|ch| {
            let mut c = ch.to_vec();
            if big {
                c.reverse();
            }
            match dt {
                1 => c[0] as f64,
                2 => i16::from_le_bytes([c[0], c[1]]) as f64,
                12 => u16::from_le_bytes([c[0], c[1]]) as f64,
                3 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                13 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                4 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                5 => f64::from_le_bytes(c.try_into().unwrap()),
                _ => unreachable!(),
            }
        })
        .collect();
    (vals, w, h)
}

/// `gdal_translate ARGS SRC DST` into `dir`, returning DST's path.
pub fn gdal_make(dir: &Path, name: &str, src: &str, args: &[&str]) -> String {
    let dst = dir.join(name).to_string_lossy().into_owned();
    let mut a: Vec<&str> = vec!["-q"];
    a.extend_from_slice(args);
    a.push(src);
    a.push(&dst);
    run("gdal_translate", &a);
    dst
}

/// Runs GDAL's Python (Debian's python3 with osgeo) on `code`.
pub fn gdal_python(code: &str) -> String {
    let py = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    run(py, &["-c", code])
}

/// GDAL's COG validator (`validate_cloud_optimized_geotiff.py`, full check): the list of
/// errors (empty when valid).
pub fn cog_validate(path: &str) -> Vec<String> {
    let code = format!(
        "from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate\n\
         w, e, d = validate({path:?}, full_check=True)\n\
         print('\\n'.join(['ERROR ' + x for x in e] + ['WARNING ' + x for x in w]))"
    );
    gdal_python(&code)
        .lines()
        .filter(|l| l.starts_with("ERROR"))
        .map(str::to_string)
        .collect()
}

/// One IFD entry for [`build_tiff`]: tag, type, count, and value bytes (little-endian).
pub type RawEntry = (u16, u16, u32, Vec<u8>);

pub fn short(tag: u16, v: u16) -> RawEntry {
    (tag, 3, 1, v.to_le_bytes().to_vec())
}

pub fn long(tag: u16, v: u32) -> RawEntry {
    (tag, 4, 1, v.to_le_bytes().to_vec())
}

pub fn longs(tag: u16, v: &[u32]) -> RawEntry {
    (
        tag,
        4,
        v.len() as u32,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// A classic little-endian TIFF: header, `data` at offset 8, then one IFD with `entries`
/// (in the order given; values that do not fit inline follow the IFD). Offsets inside
/// `entries` refer to the file, so pixel data starts at 8.
pub fn build_tiff(data: &[u8], entries: &[RawEntry]) -> Vec<u8> {
    let mut f = b"II*\0".to_vec();
    let ifd_at = 8 + data.len() as u32 + (data.len() as u32 % 2);
    f.extend_from_slice(&ifd_at.to_le_bytes());
    f.extend_from_slice(data);
    if data.len() % 2 == 1 {
        f.push(0);
    }
    let n = entries.len() as u32;
    let mut values_at = ifd_at + 2 + 12 * n + 4;
    let mut tail = Vec::new();
    f.extend_from_slice(&(n as u16).to_le_bytes());
    for (tag, typ, count, v) in entries {
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&typ.to_le_bytes());
        f.extend_from_slice(&count.to_le_bytes());
        if v.len() <= 4 {
            let mut x = v.clone();
            x.resize(4, 0);
            f.extend_from_slice(&x);
        } else {
            f.extend_from_slice(&values_at.to_le_bytes());
            tail.extend_from_slice(v);
            values_at += v.len() as u32;
        }
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&tail);
    f
}

/// A `w`×`h` 8-bit single-strip uncompressed TIFF with its IFD after the pixels.
pub fn strip_tiff(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    build_tiff(
        pixels,
        &[
            long(256, w),
            long(257, h),
            short(258, 8),
            short(259, 1),
            short(262, 1),
            long(273, 8),
            short(277, 1),
            long(278, h),
            long(279, w * h),
        ],
    )
}
