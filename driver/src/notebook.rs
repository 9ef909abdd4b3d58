//! What every notebook of `notebooks/` uses: showing pictures and tables in evcxr, finding the
//! fixtures or the demo scene, and a quiet stage context. One copy here, instead of one cell
//! in each notebook.
//!
//! ```
//! use driver::notebook::{html_table, uri};
//! assert_eq!(uri(std::path::Path::new("/tmp/a b.tif")), "/tmp/a b.tif");
//! let t = html_table(&["site", "ET0"], &[vec!["<A&B>".into(), "5.7".into()]]);
//! assert!(t.contains("<th>site</th>") && t.contains("&lt;A&amp;B&gt;"));
//! ```

use std::path::{Path, PathBuf};

use base64::Engine as _;
use cloud::{Ctx, ProgressMode, Store};

use crate::exec::local::LocalExecutor;

/// Result of the notebook helpers and cells.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Shows PNG bytes inline (evcxr's display protocol: a MIME type, then base64).
pub fn show_png(png: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    println!("EVCXR_BEGIN_CONTENT image/png\n{b64}\nEVCXR_END_CONTENT");
}

/// A small table as HTML, every cell escaped and right-aligned.
pub fn html_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut h = String::from("<table><thead><tr>");
    for c in header {
        h += &format!("<th>{}</th>", esc(c));
    }
    h += "</tr></thead><tbody>";
    for r in rows {
        h += "<tr>";
        for c in r {
            h += &format!("<td style=\"text-align:right\">{}</td>", esc(c));
        }
        h += "</tr>";
    }
    h += "</tbody></table>";
    h
}

/// Shows a small table inline (HTML).
pub fn show_table(header: &[&str], rows: &[Vec<String>]) {
    let h = html_table(header, rows);
    println!("EVCXR_BEGIN_CONTENT text/html\n{h}\nEVCXR_END_CONTENT");
}

/// The real public fixtures: `$GEOBUTTON_DATA`, else `../shared/data` beside the repository
/// (`../../shared/data` from the notebooks' folder); `None` when absent.
pub fn fixtures() -> Option<PathBuf> {
    let p = std::env::var_os("GEOBUTTON_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../../shared/data"));
    p.canonicalize().ok().filter(|p| p.is_dir())
}

/// Where the notebooks write: `$GEOBUTTON_NOTEBOOK_OUT`, else
/// `<temp dir>/geobutton-notebooks`.
pub fn work_root() -> PathBuf {
    std::env::var_os("GEOBUTTON_NOTEBOOK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("geobutton-notebooks"))
}

/// A path as a URI string for [`Store`].
pub fn uri(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The synthetic scene and runs of `geobutton demo` under `<work root>/demo`, generated on
/// first use (the fallback when the fixtures are absent).
pub fn demo() -> Res<PathBuf> {
    let dir = work_root().join("demo");
    if !dir.join("ndvi/report.json").exists() {
        std::fs::create_dir_all(&dir)?;
        let executor = LocalExecutor::default();
        crate::demo::run_demo(
            &Store::from_env(),
            &uri(&dir),
            &executor,
            ProgressMode::Silent,
        )?;
    }
    Ok(dir)
}

/// A context for stage calls: the environment's store, no progress bars.
pub fn ctx() -> Ctx {
    Ctx::new(Store::from_env()).with_progress(ProgressMode::Silent)
}
