//! End-to-end tests live in `e2e/`; this library only locates the `banli` binary they run.

use std::path::PathBuf;

/// The `banli` binary of this build (`target/<profile>/banli`), built by `cargo test --workspace`.
pub fn banli_binary() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap_or_default();
    dir.pop(); // the test executable
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("banli{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (which builds it) or `cargo build -p banli`",
        bin.display()
    );
    bin
}
