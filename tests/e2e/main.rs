//! End-to-end tests: the `banli` binary as separate processes. One binary, one module per area.
//!
//! A test target of the `banli` package (see crates/cli/Cargo.toml), so that `cargo test` always
//! builds the binary first.

mod audit;
mod backup;
mod cli;
mod confidential;
mod consistency;
mod console;
mod demo;
mod deploy;
mod distributed;
mod front_door;
mod guide;
mod notify;
mod nul;
mod retry;
mod serve;
mod trace;
mod walk;

/// The `banli` binary of this build.
pub fn banli_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_banli"))
}
