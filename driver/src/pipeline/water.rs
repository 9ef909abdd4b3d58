//! The `water` pipeline: DTM tiles → crop water use.
//!
//! 1. `tiles`: one `water` task per DTM tile (the stage computes each tile as k×k windows
//!    with their own geotransforms and merges them in memory, exactly: see `water::stage`),
//!    writing `tiles/<stem>_et0.tif`, `_etc.tif`, `_plots.csv`, `_et0.png`.
//! 2. `mosaic` (two tiles or more): `terrain` mosaic tasks assemble `et0.tif` (and `etc.tif`
//!    with plots) over all tiles, on their common pixel lattice (MDT05 sheets share it).
//! 3. results: `plots.csv` merges the tiles' per-plot rows — pixels, covered area and water
//!    volume add up across tiles (the stage computes a cut plot's volume on its covered area,
//!    so the sum is the plot's), means are pixel-weighted.

use std::collections::BTreeMap;

use cloud::Store;
use serde_json::Value;
use terrain::TerrainStage;
use terrain::stage::{MosaicFormat, MosaicParams, RasterOutput, TerrainParams};
use water::WaterStage;

use super::{Pipeline, Product, Results, file_stem, id_part, outcome, unique_ids};
use crate::error::DriverError;
use crate::exec::StepOutcome;
use crate::plan::{Step, TaskSpec};
use crate::stage::StageKind;

/// Settings of a water run.
#[derive(Debug, Clone)]
pub struct WaterPipeline {
    /// DTM tiles (GeoTIFF/COG or ESRI ASCII).
    pub dtms: Vec<String>,
    /// Task parameters shared by every tile (`dtm` and `out` are filled per tile).
    pub template: water::Params,
    /// Output root.
    pub out: String,
    /// How tiles are mosaicked (two tiles or more); `None`: not at all.
    pub mosaic: Option<MosaicFormat>,
}

impl WaterPipeline {
    /// A pipeline over `dtms` with `template`'s settings, writing under `out`.
    pub fn new(dtms: Vec<String>, template: water::Params, out: &str) -> WaterPipeline {
        WaterPipeline {
            dtms,
            template,
            out: out.trim_end_matches('/').to_string(),
            mosaic: Some(MosaicFormat::Cog),
        }
    }

    fn tiles_dir(&self) -> String {
        cloud::uri::join(&self.out, "tiles")
    }
}

/// The extents of tiles before `i` that overlap tile `i`.
fn owned_by_earlier(extents: &[Option<[f64; 4]>], i: usize) -> Vec<[f64; 4]> {
    let Some(Some(me)) = extents.get(i) else {
        return Vec::new();
    };
    extents[..i]
        .iter()
        .flatten()
        .filter(|e| e[0] < me[2] && me[0] < e[2] && e[1] < me[3] && me[1] < e[3])
        .copied()
        .collect()
}

impl Pipeline for WaterPipeline {
    fn name(&self) -> &'static str {
        "water"
    }

    fn steps(&self) -> Vec<&'static str> {
        vec!["tiles", "mosaic"]
    }

    fn describe(&self) -> Value {
        serde_json::json!({ "dtms": self.dtms, "template": self.template, "out": self.out, "mosaic": self.mosaic })
    }

    fn validate(&self) -> Result<(), DriverError> {
        if self.dtms.is_empty() {
            return Err(DriverError::Invalid("water: no DTM tile given".into()));
        }
        for dtm in &self.dtms {
            water::Params {
                dtm: dtm.clone(),
                out: self.tiles_dir(),
                ..self.template.clone()
            }
            .validate()
            .map_err(|e| DriverError::Invalid(format!("water: {}", e.message)))?;
        }
        Ok(())
    }

    fn plan_next(
        &mut self,
        store: &Store,
        done: &[StepOutcome],
    ) -> Result<Option<Step>, DriverError> {
        match done.len() {
            0 => {
                self.validate()?;
                // Where DTM tiles overlap, the first tile owns the cells (as the mosaic
                // takes the first tile): later tiles leave them out of their plot totals.
                // A DTM whose header cannot be read owns nothing here: its own task fails
                // with the reason (and the others still run).
                let extents: Vec<Option<[f64; 4]>> =
                    if self.template.plots.is_some() && self.dtms.len() > 1 {
                        self.dtms
                            .iter()
                            .map(|d| {
                                let (gt, w, h) = cog::grid_of(store, d).ok()?;
                                let (x0, y0) = gt.apply(0.0, 0.0);
                                let (x1, y1) = gt.apply(w as f64, h as f64);
                                Some([x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)])
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                let ids = unique_ids(
                    &self
                        .dtms
                        .iter()
                        .map(|d| format!("tile-{}", id_part(&file_stem(d))))
                        .collect::<Vec<_>>(),
                );
                let stems: Vec<String> = self.dtms.iter().map(|d| file_stem(d)).collect();
                if unique_ids(&stems) != stems {
                    return Err(DriverError::Invalid(
                        "water: two DTM tiles have the same file name; their outputs would collide"
                            .into(),
                    ));
                }
                let tasks = self
                    .dtms
                    .iter()
                    .zip(ids)
                    .enumerate()
                    .map(|(i, (dtm, id))| {
                        let p = water::Params {
                            dtm: dtm.clone(),
                            out: self.tiles_dir(),
                            plots_owned_elsewhere: owned_by_earlier(&extents, i),
                            ..self.template.clone()
                        };
                        TaskSpec::new::<WaterStage>(&id, &p)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Step::new("tiles", StageKind::Water, tasks)?))
            }
            1 if self.dtms.len() > 1 && self.mosaic.is_some() => {
                let format = self.mosaic.unwrap_or_default();
                let tiles: Vec<water::Output> = outcome("water", done, "tiles")?.outputs()?;
                let mut tasks = vec![mosaic_task(
                    "et0",
                    tiles.iter().map(|t| t.et0.clone()).collect(),
                    &self.out,
                    format,
                )?];
                let etc: Vec<String> = tiles.iter().filter_map(|t| t.etc.clone()).collect();
                if !etc.is_empty() {
                    tasks.push(mosaic_task("etc", etc, &self.out, format)?);
                }
                Ok(Some(Step::new("mosaic", StageKind::Terrain, tasks)?))
            }
            _ => Ok(None),
        }
    }

    fn results(&self, store: &Store, done: &[StepOutcome]) -> Result<Results, DriverError> {
        let tiles: Vec<water::Output> = outcome("water", done, "tiles")?.outputs()?;
        let mut products = Vec::new();
        if let Some(format) = self.mosaic.filter(|_| self.dtms.len() > 1) {
            let ext = format.extension();
            products.push(Product::new(
                &cloud::uri::join(&self.out, &format!("et0{ext}")),
                "reference evapotranspiration ET0, mm/day, all tiles",
            ));
            if tiles.iter().any(|t| t.etc.is_some()) {
                products.push(Product::new(
                    &cloud::uri::join(&self.out, &format!("etc{ext}")),
                    "crop evapotranspiration ETc, mm/day, all tiles",
                ));
            }
        }
        for t in &tiles {
            products.push(Product::new(&t.et0, format!("ET0 of {}", t.dtm)));
            if let Some(u) = &t.etc {
                products.push(Product::new(u, format!("ETc of {}", t.dtm)));
            }
            if let Some(u) = &t.png {
                products.push(Product::new(u, format!("ET0 map of {}", t.dtm)));
            }
        }
        let csvs: Vec<String> = tiles.iter().filter_map(|t| t.plots_csv.clone()).collect();
        let mut plots = 0;
        let mut volume = 0.0;
        if !csvs.is_empty() {
            let merged = merge_plot_csvs(store, &csvs)?;
            plots = merged.len();
            volume = merged.values().filter_map(|p| p.volume).sum::<f64>();
            let uri = cloud::uri::join(&self.out, "plots.csv");
            store.put(&uri, bytes::Bytes::from(plots_csv_text(&merged)?))?;
            products.push(Product::new(&uri, "water use per plot, m³/day, all tiles"));
            // The tiles share one CRS (the mosaic needs it): their .prj says it.
            if let Some(prj) = tiles.iter().find_map(|t| t.plots_prj.clone()) {
                let to = cog::prj_uri(&uri);
                store.put(&to, store.get_capped(&prj, 1 << 20)?)?;
                products.push(Product::new(&to, "CRS of plots.csv (WKT)"));
            }
        }
        let land: u64 = tiles.iter().map(|t| t.land_pixels).sum();
        let mean = (land > 0).then(|| {
            tiles
                .iter()
                .map(|t| t.et0_mean.unwrap_or(0.0) * t.land_pixels as f64)
                .sum::<f64>()
                / land as f64
        });
        Ok(Results {
            products,
            summary: serde_json::json!({
                "tiles": tiles.len(),
                "land_pixels": land,
                "et0_mean_mm_day": mean,
                "et0_min_mm_day": tiles.iter().filter_map(|t| t.et0_min).reduce(f32::min),
                "et0_max_mm_day": tiles.iter().filter_map(|t| t.et0_max).reduce(f32::max),
                "plots": plots,
                "volume_m3_day": volume,
            }),
        })
    }
}

fn mosaic_task(
    name: &str,
    inputs: Vec<String>,
    out: &str,
    format: MosaicFormat,
) -> Result<TaskSpec, DriverError> {
    let p = TerrainParams::Mosaic(MosaicParams {
        inputs,
        output: cloud::uri::join(out, &format!("{name}{}", format.extension())),
        format,
        raster: RasterOutput::default(),
    });
    TaskSpec::new::<TerrainStage>(&format!("mosaic-{name}"), &p)
}

/// One plot's figures summed over tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotTotal {
    pub uso_sigpac: String,
    pub kc: Option<f64>,
    pub area_m2: f64,
    pub pixels: u64,
    pub covered_m2: f64,
    pub complete: bool,
    /// Σ ET0 × pixels and Σ ETc × pixels (for pixel-weighted means).
    et0_sum: f64,
    etc_sum: f64,
    etc_pixels: u64,
    pub volume: Option<f64>,
}

impl PlotTotal {
    pub fn et0_mean(&self) -> Option<f64> {
        (self.pixels > 0).then(|| self.et0_sum / self.pixels as f64)
    }
    pub fn etc_mean(&self) -> Option<f64> {
        (self.etc_pixels > 0).then(|| self.etc_sum / self.etc_pixels as f64)
    }
}

/// Reads the tiles' `_plots.csv` files and adds up each plot's rows.
pub fn merge_plot_csvs(
    store: &Store,
    uris: &[String],
) -> Result<BTreeMap<String, PlotTotal>, DriverError> {
    let mut out: BTreeMap<String, PlotTotal> = BTreeMap::new();
    for uri in uris {
        let bytes = store.get_capped(uri, 1 << 30)?;
        let mut r = csv::Reader::from_reader(bytes.as_ref());
        let bad = |m: String| DriverError::Invalid(format!("{uri}: {m}"));
        let headers = r.headers().map_err(|e| bad(e.to_string()))?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| bad(format!("no column {name}")))
        };
        let [id, uso, kc, area, pixels, covered, complete, et0, etc, vol] = [
            "plot_id",
            "uso_sigpac",
            "kc",
            "area_m2",
            "pixels",
            "covered_m2",
            "complete",
            "et0_mean_mm",
            "etc_mean_mm",
            "volume_m3_day",
        ]
        .map(col);
        let (id, uso, kc, area, pixels, covered, complete, et0, etc, vol) = (
            id?, uso?, kc?, area?, pixels?, covered?, complete?, et0?, etc?, vol?,
        );
        for (line, row) in r.records().enumerate() {
            let row = row.map_err(|e| bad(e.to_string()))?;
            let num = |i: usize| -> Result<Option<f64>, DriverError> {
                let s = row.get(i).unwrap_or("").trim();
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<f64>()
                    .map(Some)
                    .map_err(|_| bad(format!("line {}: {s:?} is not a number", line + 2)))
            };
            let n = num(pixels)?.unwrap_or(0.0) as u64;
            let e = out
                .entry(row.get(id).unwrap_or("").to_string())
                .or_insert_with(|| PlotTotal {
                    uso_sigpac: row.get(uso).unwrap_or("").to_string(),
                    kc: None,
                    area_m2: 0.0,
                    pixels: 0,
                    covered_m2: 0.0,
                    complete: false,
                    et0_sum: 0.0,
                    etc_sum: 0.0,
                    etc_pixels: 0,
                    volume: None,
                });
            e.kc = e.kc.or(num(kc)?);
            e.area_m2 = num(area)?.unwrap_or(e.area_m2);
            e.pixels += n;
            e.covered_m2 += num(covered)?.unwrap_or(0.0);
            e.complete |= row.get(complete).is_some_and(|s| s == "true");
            if let Some(v) = num(et0)? {
                e.et0_sum += v * n as f64;
            }
            if let Some(v) = num(etc)? {
                e.etc_sum += v * n as f64;
                e.etc_pixels += n;
            }
            if let Some(v) = num(vol)? {
                e.volume = Some(e.volume.unwrap_or(0.0) + v);
            }
        }
    }
    Ok(out)
}

/// `plots.csv` of merged plots (the stage's columns).
pub fn plots_csv_text(plots: &BTreeMap<String, PlotTotal>) -> Result<Vec<u8>, DriverError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| DriverError::encode("plots.csv", e);
    w.write_record([
        "plot_id",
        "uso_sigpac",
        "kc",
        "area_m2",
        "pixels",
        "covered_m2",
        "complete",
        "et0_mean_mm",
        "etc_mean_mm",
        "volume_m3_day",
    ])
    .map_err(err)?;
    let o = |v: Option<f64>, d: usize| v.map_or(String::new(), |v| format!("{v:.d$}"));
    for (id, p) in plots {
        w.write_record([
            id.clone(),
            p.uso_sigpac.clone(),
            o(p.kc, 2),
            format!("{:.1}", p.area_m2),
            p.pixels.to_string(),
            format!("{:.1}", p.covered_m2),
            p.complete.to_string(),
            o(p.et0_mean(), 3),
            o(p.etc_mean(), 3),
            o(p.volume, 3),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| DriverError::encode("plots.csv", e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plot_rows_add_up_across_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::from_env();
        let head = "plot_id,uso_sigpac,kc,area_m2,pixels,covered_m2,complete,et0_mean_mm,etc_mean_mm,volume_m3_day\n";
        let a = dir.path().join("a.csv").display().to_string();
        let b = dir.path().join("b.csv").display().to_string();
        std::fs::write(&a, format!("{head}p1,VI,0.70,1000.0,30,750.0,false,5.000,3.500,2.625\np2,OV,0.70,100.0,4,100.0,true,6.000,4.200,0.420\n")).unwrap();
        std::fs::write(
            &b,
            format!("{head}p1,VI,0.70,1000.0,10,250.0,false,7.000,4.900,1.225\n"),
        )
        .unwrap();
        let m = merge_plot_csvs(&store, &[a, b]).unwrap();
        let p1 = &m["p1"];
        assert_eq!(p1.pixels, 40);
        assert!((p1.covered_m2 - 1000.0).abs() < 1e-9);
        assert!((p1.volume.unwrap() - 3.85).abs() < 1e-9);
        assert!((p1.et0_mean().unwrap() - 5.5).abs() < 1e-9); // (30·5 + 10·7) / 40
        assert!(m["p2"].complete);
        let text = String::from_utf8(plots_csv_text(&m).unwrap()).unwrap();
        assert!(
            text.contains("p1,VI,0.70,1000.0,40,1000.0,false,5.500,3.850,3.850"),
            "{text}"
        );
    }
}
