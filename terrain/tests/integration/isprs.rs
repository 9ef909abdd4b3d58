//! SMRF on the ISPRS filter-test reference samples (Sithole & Vosselman 2003): type I error
//! (bare earth rejected), type II error (objects accepted) and total error.

use terrain::points::PointCloud;
use terrain::smrf::{SmrfParams, candidates, smrf};

const ISPRS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/isprs");

/// (cloud, label: true = bare earth)
fn load(sample: &str) -> (PointCloud, Vec<bool>) {
    let text = std::fs::read_to_string(format!("{ISPRS}/{sample}.txt")).unwrap();
    let (mut x, mut y, mut z, mut bare) = (vec![], vec![], vec![], vec![]);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        x.push(v[0]);
        y.push(v[1]);
        z.push(v[2]);
        bare.push(v[3] == 0.0);
    }
    (PointCloud::from_xyz(x, y, z), bare)
}

/// (type I %, type II %, total %)
fn errors(sample: &str, params: &SmrfParams) -> (f64, f64, f64) {
    let (cloud, bare) = load(sample);
    let cand = candidates(&cloud, params, None);
    let r = smrf(&cloud, cand, params).unwrap();
    let n_bare = bare.iter().filter(|&&b| b).count() as f64;
    let n_obj = bare.len() as f64 - n_bare;
    let type1 = bare
        .iter()
        .zip(&r.ground)
        .filter(|(b, g)| **b && !**g)
        .count() as f64;
    let type2 = bare
        .iter()
        .zip(&r.ground)
        .filter(|(b, g)| !**b && **g)
        .count() as f64;
    let e = (
        100.0 * type1 / n_bare,
        100.0 * type2 / n_obj,
        100.0 * (type1 + type2) / bare.len() as f64,
    );
    eprintln!(
        "{sample} slope {} window {} threshold {} scalar {}: type I {:.2} %, type II {:.2} %, total {:.2} %",
        params.slope, params.window, params.threshold, params.scalar, e.0, e.1, e.2
    );
    e
}

#[test]
fn samp12_total_error_with_cloudbutton_parameters() {
    let (t1, t2, total) = errors("samp12", &SmrfParams::default());
    // Measured: type I 1.32 %, type II 4.57 %, total 2.90 %.
    assert!(total <= 3.5, "total error {total:.2} %");
    assert!(t1 < 2.0 && t2 < 6.0, "{t1} {t2}");
}

#[test]
fn samp12_total_error_with_pdal_parameters() {
    // Pingel's reference implementation reports 3.09 % with these.
    let (_, _, total) = errors("samp12", &SmrfParams::pdal_defaults());
    assert!(total <= 3.5, "total error {total:.2} %");
}

#[test]
fn samp11_errors() {
    // Steep, vegetated hillside with buildings: the hardest sample of the set.
    let (t1, t2, total) = errors("samp11", &SmrfParams::default());
    assert!(total <= 10.0, "total error {total:.2} %");
    assert!(t1 < 10.0 && t2 < 12.0, "{t1} {t2}");
    let (_, _, total) = errors("samp11", &SmrfParams::pdal_defaults());
    assert!(total <= 10.0, "total error {total:.2} %");
}
