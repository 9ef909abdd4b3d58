//! HTTP range reads against nginx serving `../shared/data/raster/` on 127.0.0.1.

use std::process::Command;

use crate::support::{ChildGuard, find_program, free_port, shared_data, wait_for_port};
use cloud::{Store, StoreError, StoreOptions};

fn start_nginx(root: &std::path::Path) -> (ChildGuard, u16, tempfile::TempDir) {
    let nginx = find_program("nginx")
        .expect("nginx is not installed: apt-get install nginx-light (scripts/test.sh does)");
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    // One process (no master forking a worker), so that killing it leaves nothing behind
    // holding the test's output open.
    let conf = format!(
        "{user}daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
           proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
           scgi_temp_path {d}/scgi;\n  default_type application/octet-stream;\n\
           server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
        user = if is_root { "user root;\n" } else { "" },
        root = root.display(),
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, "nginx");
    (ChildGuard(child), port, dir)
}

#[test]
fn range_reads_over_http() {
    let root = shared_data().join("raster");
    let (_nginx, port, _dir) = start_nginx(&root);
    let rel = "rio-cogeo/image_COG_gdal3.1.tif";
    let local = std::fs::read(root.join(rel)).unwrap();
    let url = format!("http://127.0.0.1:{port}/{rel}");
    let store = Store::new(StoreOptions {
        coalesce_gap: 16,
        ..StoreOptions::default()
    });
    let size = local.len() as u64;
    assert_eq!(store.head(&url).unwrap(), size);

    // Start, middle and end, in one coalesced call.
    let mid = size / 2;
    let ranges = vec![0..16u64, mid..mid + 1000, size - 100..size, 20..30];
    store.reset_stats();
    let got = store.get_ranges(&url, &ranges).unwrap();
    for (r, b) in ranges.iter().zip(&got) {
        assert_eq!(
            b.as_ref(),
            &local[r.start as usize..r.end as usize],
            "{r:?}"
        );
    }
    // 0..16 and 20..30 are 4 bytes apart: one request; the other two alone.
    assert_eq!(store.stats().get_requests, 3);

    assert_eq!(store.get(&url).unwrap().as_ref(), local.as_slice());

    // Past the end: nginx answers 416, which must surface as RangePastEnd.
    match store.get_range(&url, size..size + 10) {
        Err(StoreError::RangePastEnd { size: s, .. }) => assert_eq!(s, Some(size)),
        other => panic!("expected RangePastEnd, got {other:?}"),
    }
    // Straddling the end: the server sends a short body, which must be an error too.
    assert!(matches!(
        store.get_range(&url, size - 5..size + 5),
        Err(StoreError::RangePastEnd { .. })
    ));

    let missing = format!("http://127.0.0.1:{port}/no/such.tif");
    assert!(store.head(&missing).unwrap_err().is_not_found());
    assert!(store.get_range(&missing, 0..10).unwrap_err().is_not_found());
    // HTTP is read-only.
    assert!(matches!(
        store.list(&format!("http://127.0.0.1:{port}/")),
        Err(StoreError::Unsupported { .. })
    ));
}
