#![allow(clippy::unwrap_used)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let store = cloud::Store::new(cloud::StoreOptions::default());
    let r = cog::CogReader::open(&store, &args[1]).unwrap();
    println!("{}", serde_json::to_string_pretty(r.info()).unwrap());
    let band = r.read_band::<f32>(1).unwrap();
    let o = cog::CogWriteOptions {
        blocksize: args.get(3).map(|s| s.parse().unwrap()).unwrap_or(512),
        ..Default::default()
    };
    cog::write_cog(&store, &args[2], &band, &o).unwrap();
}
