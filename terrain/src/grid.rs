//! Raster grids laid over point clouds.
//!
//! A [`Grid`] is a north-up lattice of square cells of side `res` (CRS units, metres for a
//! projected CRS). Its cells are indexed globally relative to an origin: column `c` spans
//! `origin_x + (col0 + c)·res ..`, and array row `r` (row 0 at the top) is the global row
//! `row0 + rows − 1 − r` spanning `origin_y + global_row·res ..`.
//!
//! - [`Grid::snapped`] puts the origin at (0, 0), so every grid of a resolution shares one
//!   lattice: the rasters of neighbouring partitions line up cell for cell and mosaic
//!   without seams. A point at `x` lies in global column `floor(x / res)`.
//! - [`Grid::pdal`] reproduces PDAL `writers.gdal` without `bounds`: origin at the minimum
//!   x/y of the points and `floor(extent / res) + 1` cells in each direction.

use cog::GeoTransform;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TerrainError};

/// Largest number of cells one grid may have in a task (2.5·10⁸: 1 GB per float32 band).
pub const MAX_CELLS: u64 = 250_000_000;

/// An axis-aligned 2D bounding box in CRS units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bounds {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

impl Bounds {
    /// The box holding the single point (x, y).
    pub fn point(x: f64, y: f64) -> Bounds {
        Bounds {
            min_x: x,
            min_y: y,
            max_x: x,
            max_y: y,
        }
    }

    /// Grows the box to hold (x, y).
    pub fn include(&mut self, x: f64, y: f64) {
        self.min_x = self.min_x.min(x);
        self.min_y = self.min_y.min(y);
        self.max_x = self.max_x.max(x);
        self.max_y = self.max_y.max(y);
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &Bounds) -> Bounds {
        Bounds {
            min_x: self.min_x.min(other.min_x),
            min_y: self.min_y.min(other.min_y),
            max_x: self.max_x.max(other.max_x),
            max_y: self.max_y.max(other.max_y),
        }
    }

    /// True when all four numbers are finite and min ≤ max.
    pub fn is_valid(&self) -> bool {
        [self.min_x, self.min_y, self.max_x, self.max_y]
            .iter()
            .all(|v| v.is_finite())
            && self.min_x <= self.max_x
            && self.min_y <= self.max_y
    }
}

/// A north-up grid of square cells (see the module documentation for the indexing).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Reference point of the global cell lattice, CRS units.
    pub origin_x: f64,
    pub origin_y: f64,
    /// Cell side, CRS units.
    pub res: f64,
    /// Global index of the leftmost column.
    pub col0: i64,
    /// Global index of the bottom row.
    pub row0: i64,
    /// Size in cells.
    pub cols: usize,
    pub rows: usize,
}

/// Checks a resolution: finite and > 0.
pub fn check_resolution(res: f64, what: &str) -> Result<()> {
    if res.is_finite() && res > 0.0 {
        Ok(())
    } else {
        Err(TerrainError::param(format!(
            "{what} must be a positive number of CRS units, got {res}"
        )))
    }
}

/// Most grid cells per point before a grid is refused as absurd for its points (a 1 m grid
/// over a few points spread across kilometres: all void, and its inpainting costs time for
/// cells rather than points). PNOA LiDAR at 0.5 points/m² on 1 m cells has 2.
pub const MAX_CELLS_PER_POINT: usize = 400;

/// Refuses a grid of `cells` cells of `res` (`what`: the option that sets it) for `points`
/// points spread over it when it has more than [`MAX_CELLS_PER_POINT`] cells per point
/// (grids under a million cells always pass).
pub fn check_density(uri: &str, points: usize, grid: &Grid, res: f64, what: &str) -> Result<()> {
    let cells = grid.cells();
    if cells <= 1_000_000 || cells <= MAX_CELLS_PER_POINT.saturating_mul(points) {
        return Ok(());
    }
    let area = cells as f64 * res * res;
    let suggest = (area * 4.0 / points.max(1) as f64).sqrt();
    Err(TerrainError::input(
        uri,
        format!(
            "{points} points over {}×{} cells of {res} m ({:.0} cells per point): the grid is \
             absurd for so few points; use a coarser {what} (about {:.0} m)",
            grid.cols,
            grid.rows,
            cells as f64 / points.max(1) as f64,
            suggest.ceil()
        ),
    ))
}

fn check_size(cols: u64, rows: u64, res: f64) -> Result<()> {
    let cells = cols.saturating_mul(rows);
    if cols == 0 || rows == 0 || cells > MAX_CELLS {
        return Err(TerrainError::TooLarge(format!(
            "a grid of {cols}×{rows} cells at resolution {res} exceeds the limit of {MAX_CELLS} cells \
             per task; use a coarser resolution or smaller partitions"
        )));
    }
    Ok(())
}

/// `floor(v / res)` as an index, guarded against overflow.
fn cell_index(v: f64, res: f64) -> Result<i64> {
    let f = (v / res).floor();
    if f.is_finite() && f.abs() < 9.0e15 {
        Ok(f as i64)
    } else {
        Err(TerrainError::param(format!(
            "coordinate {v} at resolution {res} is out of range"
        )))
    }
}

impl Grid {
    /// The grid on the global lattice of `res` holding `bounds`: columns
    /// `floor(min_x/res) ..= floor(max_x/res)`, rows likewise.
    pub fn snapped(bounds: &Bounds, res: f64) -> Result<Grid> {
        check_resolution(res, "resolution")?;
        if !bounds.is_valid() {
            return Err(TerrainError::param(format!("invalid bounds {bounds:?}")));
        }
        let c0 = cell_index(bounds.min_x, res)?;
        let c1 = cell_index(bounds.max_x, res)?;
        let r0 = cell_index(bounds.min_y, res)?;
        let r1 = cell_index(bounds.max_y, res)?;
        let cols = (c1 - c0 + 1) as u64;
        let rows = (r1 - r0 + 1) as u64;
        check_size(cols, rows, res)?;
        Ok(Grid {
            origin_x: 0.0,
            origin_y: 0.0,
            res,
            col0: c0,
            row0: r0,
            cols: cols as usize,
            rows: rows as usize,
        })
    }

    /// PDAL `writers.gdal`'s grid for points with `bounds` (no `bounds` option): origin at
    /// (min_x, min_y), `(int)((max − min)/res + 1)` cells per axis.
    pub fn pdal(bounds: &Bounds, res: f64) -> Result<Grid> {
        check_resolution(res, "resolution")?;
        if !bounds.is_valid() {
            return Err(TerrainError::param(format!("invalid bounds {bounds:?}")));
        }
        let cols = ((bounds.max_x - bounds.min_x) / res + 1.0).floor();
        let rows = ((bounds.max_y - bounds.min_y) / res + 1.0).floor();
        if !(cols.is_finite() && rows.is_finite()) || cols > 1e15 || rows > 1e15 {
            return Err(TerrainError::TooLarge(format!(
                "grid over {bounds:?} at resolution {res} is too large"
            )));
        }
        check_size(cols as u64, rows as u64, res)?;
        Ok(Grid {
            origin_x: bounds.min_x,
            origin_y: bounds.min_y,
            res,
            col0: 0,
            row0: 0,
            cols: cols as usize,
            rows: rows as usize,
        })
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.cols * self.rows
    }

    /// The same lattice grown by `n` cells on every side.
    pub fn expand(&self, n: usize) -> Result<Grid> {
        let g = Grid {
            col0: self.col0 - n as i64,
            row0: self.row0 - n as i64,
            cols: self.cols + 2 * n,
            rows: self.rows + 2 * n,
            ..*self
        };
        check_size(g.cols as u64, g.rows as u64, g.res)?;
        Ok(g)
    }

    /// Left edge x.
    pub fn left(&self) -> f64 {
        self.origin_x + self.col0 as f64 * self.res
    }

    /// Top edge y.
    pub fn top(&self) -> f64 {
        self.origin_y + (self.row0 + self.rows as i64) as f64 * self.res
    }

    /// Right edge x.
    pub fn right(&self) -> f64 {
        self.origin_x + (self.col0 + self.cols as i64) as f64 * self.res
    }

    /// Bottom edge y.
    pub fn bottom(&self) -> f64 {
        self.origin_y + self.row0 as f64 * self.res
    }

    /// The GDAL geotransform of the grid (north up, square pixels).
    pub fn transform(&self) -> GeoTransform {
        GeoTransform::north_up(self.left(), self.top(), self.res)
    }

    /// x of the centre of column `col` (0-based from the left).
    #[inline]
    pub fn center_x(&self, col: usize) -> f64 {
        self.origin_x + ((self.col0 + col as i64) as f64 + 0.5) * self.res
    }

    /// y of the centre of array row `row` (0 at the top).
    #[inline]
    pub fn center_y(&self, row: usize) -> f64 {
        self.origin_y + ((self.row0 + (self.rows - 1 - row) as i64) as f64 + 0.5) * self.res
    }

    /// The (column, array row) of the cell holding (x, y) (cells are closed at the left and
    /// bottom), or `None` outside the grid.
    #[inline]
    pub fn cell_of(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        let gc = ((x - self.origin_x) / self.res).floor() - self.col0 as f64;
        let gr = ((y - self.origin_y) / self.res).floor() - self.row0 as f64;
        if gc >= 0.0 && gr >= 0.0 && gc < self.cols as f64 && gr < self.rows as f64 {
            Some((gc as usize, self.rows - 1 - gr as usize))
        } else {
            None
        }
    }

    /// Offsets (columns, rows from the top) of `inner` inside `self` when both lie on the
    /// same lattice and `inner` is contained; `None` otherwise.
    pub fn offset_of(&self, inner: &Grid) -> Option<(usize, usize)> {
        if self.origin_x != inner.origin_x
            || self.origin_y != inner.origin_y
            || self.res != inner.res
        {
            return None;
        }
        let dc = inner.col0 - self.col0;
        let top_self = self.row0 + self.rows as i64;
        let top_inner = inner.row0 + inner.rows as i64;
        let dr = top_self - top_inner;
        if dc < 0
            || dr < 0
            || dc as usize + inner.cols > self.cols
            || dr as usize + inner.rows > self.rows
        {
            return None;
        }
        Some((dc as usize, dr as usize))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn snapped_grid_cells() {
        let b = Bounds {
            min_x: 10.2,
            min_y: -3.5,
            max_x: 12.0,
            max_y: -1.0,
        };
        let g = Grid::snapped(&b, 1.0).unwrap();
        assert_eq!((g.col0, g.row0, g.cols, g.rows), (10, -4, 3, 4));
        assert_eq!(g.left(), 10.0);
        assert_eq!(g.top(), 0.0);
        assert_eq!(g.cell_of(12.0, -1.0), Some((2, 0)));
        assert_eq!(g.cell_of(10.2, -3.5), Some((0, 3)));
        assert_eq!(g.cell_of(13.0, -1.0), None);
        assert_eq!(g.center_x(0), 10.5);
        assert_eq!(g.center_y(0), -0.5);
        let e = g.expand(2).unwrap();
        assert_eq!(e.offset_of(&g), Some((2, 2)));
        assert_eq!(g.offset_of(&e), None);
    }

    #[test]
    fn pdal_grid_size() {
        let b = Bounds {
            min_x: 561000.43,
            min_y: 4204000.0,
            max_x: 561999.99,
            max_y: 4204248.97,
        };
        let g = Grid::pdal(&b, 5.0).unwrap();
        assert_eq!((g.cols, g.rows), (200, 50));
        assert_eq!(g.transform().0, [561000.43, 5.0, 0.0, 4204250.0, 0.0, -5.0]);
    }

    #[test]
    fn bad_resolution_and_huge_grids() {
        let b = Bounds::point(0.0, 0.0);
        assert!(matches!(
            Grid::snapped(&b, 0.0),
            Err(TerrainError::Param(_))
        ));
        assert!(Grid::snapped(&b, f64::NAN).is_err());
        let big = Bounds {
            min_x: 0.0,
            min_y: 0.0,
            max_x: 1e6,
            max_y: 1e6,
        };
        assert!(matches!(
            Grid::snapped(&big, 0.01),
            Err(TerrainError::TooLarge(_))
        ));
    }
}
