//! `--input` expansion (files, directories, globs, S3 prefixes, `@lists`) on local files and
//! on the S3-compatible server on loopback (`GEOBUTTON_TEST_S3_ENDPOINT`).

use bytes::Bytes;
use cloud::{Expansion, InputError, Store, testing, uri};

/// Writes the same small tree under `root`: two folders of tiles, a nested year, junk.
fn tree(store: &Store, root: &str) {
    for (name, size) in [
        ("tiles/a.laz", 10),
        ("tiles/b.LAZ", 20),
        ("tiles/c.las", 30),
        ("tiles/readme.txt", 1),
        ("tiles/.hidden.laz", 1),
        ("tiles/2023/d.laz", 40),
        ("tiles/2023/deep/e.laz", 50),
        ("other/f.laz", 60),
    ] {
        store
            .put(&uri::join(root, name), Bytes::from(vec![7u8; size]))
            .unwrap();
    }
}

fn names(root: &str, set: &cloud::InputSet) -> Vec<String> {
    let prefix = format!("{}/", root.trim_end_matches('/'));
    set.uris()
        .iter()
        .map(|u| u.strip_prefix(&prefix).unwrap_or(u).to_string())
        .collect()
}

fn suite(store: &Store, root: &str) {
    tree(store, root);
    let las = Expansion::new(&[".las", ".laz"]);
    let at = |s: &str| uri::join(root, s);

    // A directory (or prefix) gives its accepted files, not deeper ones, nor hidden or other files.
    let set = las.expand(store, &[at("tiles")]).unwrap();
    assert_eq!(
        names(root, &set),
        ["tiles/a.laz", "tiles/b.LAZ", "tiles/c.las"]
    );
    assert_eq!(set.total_bytes(), 60);
    assert_eq!(set.summary(), "3 inputs, 60 B");
    let slash = las.expand(store, &[at("tiles/")]).unwrap();
    assert_eq!(slash, set);

    // Globs: `*` within a segment, `**` across, classes; not filtered by extension.
    let g = las.expand(store, &[at("tiles/*.laz")]).unwrap();
    assert_eq!(names(root, &g), ["tiles/a.laz"]);
    let g = las.expand(store, &[at("tiles/**/*.laz")]).unwrap();
    assert_eq!(
        names(root, &g),
        ["tiles/2023/d.laz", "tiles/2023/deep/e.laz", "tiles/a.laz"]
    );
    assert_eq!(g.total_bytes(), 100);
    let g = las.expand(store, &[at("*/[a-c].*")]).unwrap();
    assert_eq!(
        names(root, &g),
        ["tiles/a.laz", "tiles/b.LAZ", "tiles/c.las"]
    );

    // Several specs keep their order, and an input named twice is read once.
    let set = las
        .expand(store, &[at("other"), at("tiles/*.laz"), at("tiles/a.laz")])
        .unwrap();
    assert_eq!(names(root, &set), ["other/f.laz", "tiles/a.laz"]);
    assert_eq!(set.duplicates, 1);
    assert_eq!(set.total_bytes(), 70);
    assert!(set.summary().contains("1 named twice"), "{}", set.summary());

    // The run's own output is never an input.
    let set = Expansion::new(&[".laz"])
        .excluding(&at("tiles/2023"))
        .expand(store, &[at("tiles/**/*.laz")])
        .unwrap();
    assert_eq!(names(root, &set), ["tiles/a.laz"]);
    // Everything a glob matches under the output: an error, not an empty run; a file named
    // there one by one is taken.
    let tiles_dir = at("tiles");
    let out = Expansion::new(&[".laz"]).excluding(&tiles_dir);
    let e = out.expand(store, &[at("tiles/*.laz")]).unwrap_err();
    assert!(matches!(e, InputError::UnderOutput { .. }), "{e}");
    let set = out.expand(store, &[at("tiles/a.laz")]).unwrap();
    assert_eq!(names(root, &set), ["tiles/a.laz"]);

    // Nothing matched: an error naming the spec.
    let e = las.expand(store, &[at("tiles/*.copc.laz")]).unwrap_err();
    assert!(matches!(e, InputError::NoMatch { .. }), "{e}");
    assert!(e.to_string().contains("tiles/*.copc.laz"), "{e}");
    let e = Expansion::new(&[".tif"])
        .expand(store, &[at("tiles")])
        .unwrap_err();
    assert!(e.to_string().contains("ending in .tif"), "{e}");
    let e = las.expand(store, &[at("missing.laz")]).unwrap_err();
    assert!(e.to_string().contains("missing.laz"), "{e}");

    // @lists: comments and blanks skipped, lines expanded, errors name the list and the line.
    let list = at("lists/tiles.txt");
    store
        .put(
            &list,
            Bytes::from(format!(
                "# the Murcia sheets\n\n{}\n  {}  \n",
                at("other/f.laz"),
                at("tiles/2023/*.laz")
            )),
        )
        .unwrap();
    let set = las.expand(store, &[format!("@{list}")]).unwrap();
    assert_eq!(names(root, &set), ["other/f.laz", "tiles/2023/d.laz"]);
    let bad = at("lists/bad.txt");
    store
        .put(
            &bad,
            Bytes::from(format!("{}\n{}\n", at("other/f.laz"), at("nowhere/*.laz"))),
        )
        .unwrap();
    let e = las.expand(store, &[format!("@{bad}")]).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bad.txt") && msg.contains("line 2") && msg.contains("nowhere"),
        "{msg}"
    );
    // A list naming itself stops at the depth bound.
    let selfish = at("lists/self.txt");
    store
        .put(&selfish, Bytes::from(format!("@{selfish}\n")))
        .unwrap();
    let e = las.expand(store, &[format!("@{selfish}")]).unwrap_err();
    assert!(e.to_string().contains("deep"), "{e}");
}

#[test]
fn local_inputs_expand_from_folders_globs_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let store = Store::from_env();
    suite(&store, &root);

    // A relative glob from the working directory gives relative paths. The working directory
    // is the process's, shared by every test of this binary: this binary runs the glob again
    // as a child process in `tiles` (`relative_glob_in_child`).
    let out = testkit::process::stdout_of(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "inputs::relative_glob_in_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(RELATIVE_GLOB, "*.la?")
            .current_dir(dir.path().join("tiles")),
    )
    .unwrap();
    assert!(out.contains("uris: [\"a.laz\", \"c.las\"]"), "{out}");
}

/// Set (to a glob) in the child process of `local_inputs_expand_from_folders_globs_and_lists`.
const RELATIVE_GLOB: &str = "GEOBUTTON_TEST_RELATIVE_GLOB";

/// Expands the glob in [`RELATIVE_GLOB`] from this process's working directory and prints the
/// URIs; does nothing unless run as that child.
#[test]
fn relative_glob_in_child() {
    let Ok(glob) = std::env::var(RELATIVE_GLOB) else {
        return;
    };
    let set = Expansion::new(&[])
        .expand(&Store::from_env(), &[glob])
        .unwrap();
    println!("uris: {:?}", set.uris());
}

#[test]
fn s3_inputs_expand_from_prefixes_globs_and_lists() {
    let store = testing::s3_store();
    let bucket = testing::unique_bucket(&store, "inputs").unwrap();
    let root = format!("s3://{bucket}/data");
    suite(&store, &root);

    // A prefix without its slash, where no such object exists, is the prefix.
    let las = Expansion::new(&[".las", ".laz"]);
    let set = las.expand(&store, &[format!("{root}/other")]).unwrap();
    assert_eq!(set.uris(), [format!("{root}/other/f.laz")]);
    // The bucket itself, and wildcards where S3 cannot have them.
    let e = las
        .expand(&store, &[format!("s3://{bucket}/")])
        .unwrap_err();
    assert!(matches!(e, InputError::NoMatch { .. }), "{e}");
    let e = las
        .expand(&store, &["s3://inp*/x.laz".to_string()])
        .unwrap_err();
    assert!(e.to_string().contains("bucket name"), "{e}");
    let e = las
        .expand(&store, &["https://127.0.0.1:9/tiles/*.laz".to_string()])
        .unwrap_err();
    assert!(e.to_string().contains("cannot be listed"), "{e}");
}
