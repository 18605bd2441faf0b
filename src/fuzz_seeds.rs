//! Test-only: the inputs of the table-driven unit tests become the seed corpora of the fuzz
//! targets in `fuzz/` (`fuzz/seed.sh` runs the tests with `CGIGATE_FUZZ_SEEDS` set).

use std::path::Path;

/// Writes `input` to `$CGIGATE_FUZZ_SEEDS/<target>/<hash>` when that variable is set; a
/// no-op otherwise. Named by content, so parallel tests and reruns write each input once.
pub(crate) fn save(target: &str, input: &[u8]) {
    let Some(root) = std::env::var_os("CGIGATE_FUZZ_SEEDS") else {
        return;
    };
    let dir = Path::new(&root).join(target);
    std::fs::create_dir_all(&dir).expect("seed folder is writable");
    std::fs::write(dir.join(format!("{:016x}", fnv1a(input))), input).expect("seed is written");
}

/// FNV-1a, 64 bits: stable across Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
