//! Any input must give a RunConfig or a ModelError, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut warnings = Vec::new();
        // A path in a folder that does not exist, so `environment: <file>` reads nothing.
        let path = Path::new("/nonexistent-azml-fuzz/fuzz.runconfig");
        let _ = azml::model::runconfig::parse_str(text, path, &mut warnings);
    }
});
