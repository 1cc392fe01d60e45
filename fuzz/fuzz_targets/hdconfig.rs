//! Any input must give a HyperDriveConfig or a ModelError, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let mut warnings = Vec::new();
        let path = Path::new("/nonexistent-azml-fuzz/fuzz.hdconfig.yml");
        let _ = azml::model::hdconfig::parse_str(text, path, &mut warnings);
    }
});
