//! Compiles `proto/` with protox (pure Rust: no `protoc` on the machine) and writes the file
//! descriptor set that gRPC reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "banli/common/v1/types.proto",
        "banli/suggestions/v1/suggestions.proto",
        "banli/coordination/v1/coordination.proto",
        "banli/followup/v1/followup.proto",
        "banli/audit/v1/audit.proto",
        "banli/notify/v1/notify.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("banli_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
