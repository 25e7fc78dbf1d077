//! npm `jose` (operator/tests/js): an independent verifier of tokens against a remote JWKS.

use std::path::Path;
use std::process::Command;

/// The directory of `verify.mjs`, with its pinned `jose` installed (`npm ci` when missing).
pub fn jose_dir() -> &'static Path {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js"));
    if !dir.join("node_modules/jose/package.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .expect("npm is required for the jose check (install Node.js)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    dir
}
