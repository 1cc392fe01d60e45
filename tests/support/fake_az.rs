//! A fake Azure CLI first on PATH: `az account get-access-token` answers with
//! a token (or fails like a logged-out CLI), and every spawn is counted, so
//! tests can prove the token cache spares the seconds a real `az` costs.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Write `dir/bin/az`, printing `token` (or failing when `None`); returns the bin folder.
pub fn fake_az(dir: &Path, token: Option<&str>) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let count = dir.join("az-count");
    let body = match token {
        Some(token) => format!(
            "echo x >> '{}'\nexp=$(( $(date +%s) + 3600 ))\n\
             printf '{{\"accessToken\": \"{token}\", \"expires_on\": %s, \"tokenType\": \"Bearer\"}}' \"$exp\"\n",
            count.display()
        ),
        None => format!(
            "echo x >> '{}'\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
            count.display()
        ),
    };
    let script = bin.join("az");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// How many times the fake `az` under `dir` was spawned.
pub fn az_spawns(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("az-count"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}
