//! Partitioning an object of the loopback S3 server into an S3 prefix, through the library
//! and through the stage's task runner (status file, resume). Needs
//! `GEOBUTTON_TEST_S3_ENDPOINT` (`source scripts/test-services.sh`).

use crate::common::data;
use cloud::{Ctx, ProgressMode, RunOptions, TaskState};
use lidar_partitioner::{Manifest, Params, PartitionStage, PointRecords};

fn ctx(store: &cloud::Store) -> Ctx {
    Ctx::new(store.clone()).with_progress(ProgressMode::Silent)
}

#[test]
fn partitions_an_s3_object_into_an_s3_prefix() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "lidar-part").unwrap();
    let src = data("lidar/pdal/autzen_trim.laz");
    let input = format!("s3://{bucket}/in/autzen_trim.laz");
    s3.put_file(&input, &src).unwrap();
    let out = format!("s3://{bucket}/parts/autzen");
    let params = Params::capacity(30_000, 10.0);
    let m = lidar_partitioner::partition_with(&ctx(&s3), &input, &out, &params).unwrap();
    assert_eq!(m.tiles.len(), 4);
    assert_eq!(m.manifest_uri, format!("{out}/partitions.json"));

    let mut listed: Vec<String> = s3
        .list(&format!("{out}/"))
        .unwrap()
        .into_iter()
        .map(|o| o.uri)
        .collect();
    listed.sort();
    let mut want: Vec<String> = (0..4)
        .map(|i| format!("{out}/autzen_trim-{i:04}.laz"))
        .collect();
    want.push(format!("{out}/partitions.json"));
    assert_eq!(listed, want);
    let back: Manifest = s3.get_json(&m.manifest_uri).unwrap();
    assert_eq!(back, m);

    // The same run on local files writes the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let local_out = dir.path().join("parts");
    let local =
        lidar_partitioner::partition(src.to_str().unwrap(), local_out.to_str().unwrap(), &params)
            .unwrap();
    for (a, b) in m.tiles.iter().zip(&local.tiles) {
        let remote = s3.get(&a.uri).unwrap();
        let here = std::fs::read(&b.uri).unwrap();
        assert!(remote[..] == here[..], "{} differs from {}", a.uri, b.uri);
        assert_eq!(a.bytes, here.len() as u64);
    }
    // Tiles read straight from S3.
    let t0 = PointRecords::read(&s3, &m.tiles[0].uri).unwrap();
    assert_eq!(
        t0.len() as u64,
        m.tiles[0].core_points + m.tiles[0].buffer_points
    );
}

/// An input above the in-memory download limit (16 MiB) goes through a temporary file.
#[test]
fn large_s3_input_is_downloaded_to_a_temporary_file() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "lidar-big").unwrap();
    let local = cloud::Store::default();
    let base =
        PointRecords::read(&local, data("lidar/pdal/autzen_trim.las").to_str().unwrap()).unwrap();
    // Five copies side by side: 550,000 points, 18.7 MB.
    let rec = base.record_len();
    let mut big = Vec::with_capacity(base.as_bytes().len() * 5);
    for k in 0..5i32 {
        for r in base.as_bytes().chunks_exact(rec) {
            let x = i32::from_le_bytes(r[0..4].try_into().unwrap()) + k * 200_000;
            big.extend_from_slice(&x.to_le_bytes());
            big.extend_from_slice(&r[4..]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.las");
    PointRecords::from_parts(base.meta().clone(), big)
        .unwrap()
        .write(&local, path.to_str().unwrap(), false)
        .unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() > 16 << 20);
    let input = format!("s3://{bucket}/wide.las");
    s3.put_file(&input, &path).unwrap();
    let out = format!("s3://{bucket}/wide");
    let m =
        lidar_partitioner::partition_with(&ctx(&s3), &input, &out, &Params::capacity(100_000, 5.0))
            .unwrap();
    assert_eq!(m.tiles.len(), 6);
    assert_eq!(m.tiles.iter().map(|t| t.core_points).sum::<u64>(), 550_000);
    let local_out = dir.path().join("out");
    let l = lidar_partitioner::partition(
        path.to_str().unwrap(),
        local_out.to_str().unwrap(),
        &Params::capacity(100_000, 5.0),
    )
    .unwrap();
    for (a, b) in m.tiles.iter().zip(&l.tiles) {
        assert!(
            s3.get(&a.uri).unwrap()[..] == std::fs::read(&b.uri).unwrap()[..],
            "{}",
            a.uri
        );
    }
}

/// The task runner (what Lambda and Batch run): status written next to the outputs, a
/// second run skipped, a bad input reported as an InvalidInput task error.
#[test]
fn stage_task_on_s3() {
    let s3 = cloud::testing::s3_store();
    let bucket = cloud::testing::unique_bucket(&s3, "lidar-task").unwrap();
    let input = format!("s3://{bucket}/in/MixedConifer.laz");
    s3.put_file(&input, &data("lidar/lidR/MixedConifer.laz"))
        .unwrap();
    let out = format!("s3://{bucket}/out");
    let task = serde_json::json!({
        "id": "mixed-conifer",
        "stage": "lidar-partitioner",
        "params": {"input": input, "output": out, "capacity": 10000, "buffer_m": 2.5, "format": "las"}
    });
    let c = ctx(&s3);
    let status =
        cloud::run_task::<PartitionStage>(task.clone(), &c, &RunOptions::default()).unwrap();
    assert_eq!(status.state, TaskState::Ok, "{:?}", status.error);
    assert_eq!(status.outputs.len(), 5);
    assert!(status.outputs.iter().all(|u| s3.exists(u).unwrap()));
    let m: Manifest = serde_json::from_value(status.output.clone().unwrap()).unwrap();
    assert_eq!(m.output_format, "las");
    assert!(
        s3.exists(&format!("{out}/status/mixed-conifer.json"))
            .unwrap()
    );
    let again = cloud::run_task::<PartitionStage>(task, &c, &RunOptions::default()).unwrap();
    assert!(again.skipped);

    let bad = format!("s3://{bucket}/in/bad.laz");
    s3.put(
        &bad,
        bytes::Bytes::from_static(b"LASF but not really a LAS file at all"),
    )
    .unwrap();
    let task = serde_json::json!({
        "id": "bad", "stage": "lidar-partitioner",
        "params": {"input": bad, "output": format!("s3://{bucket}/bad-out"), "capacity": 10, "buffer_m": 1}
    });
    let status = cloud::run_task::<PartitionStage>(task, &c, &RunOptions::default()).unwrap();
    assert_eq!(status.state, TaskState::Error);
    let e = status.error.unwrap();
    assert_eq!(e.kind, cloud::ErrorKind::InvalidInput);
    assert!(e.message.contains("bad.laz"), "{}", e.message);
    let unknown = serde_json::json!({
        "id": "x", "stage": "lidar-partitioner",
        "params": {"input": input, "output": out, "capacity": 10, "buffer_m": 1, "colour": "red"}
    });
    let err = cloud::run_task::<PartitionStage>(unknown, &c, &RunOptions::default()).unwrap_err();
    assert_eq!(err.kind, cloud::ErrorKind::InvalidTask);
}
