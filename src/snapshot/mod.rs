//! Source snapshots: walk a folder with v1's ignore rules (`.amlignore`, else
//! `.gitignore`), hash files with blake3, and store/materialize them.
