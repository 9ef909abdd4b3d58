//! Fuzz target: the TIFF/IFD parser and block reader on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cog::fuzz::exercise(data);
});
