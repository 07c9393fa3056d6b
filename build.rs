//! Generates the gRPC code for `proto/roomguard/v1/policy.proto` and the file descriptor set that reflection serves.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate unless `PROTOC` is set, so a fresh machine builds with no
//! system package installed.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = prost_build::Config::new();
    match env::var_os("PROTOC") {
        Some(protoc) => config.protoc_executable(protoc),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // A request that does not decode is the caller's bug: INVALID_ARGUMENT, not tonic-prost's INTERNAL.
        .codec_path("crate::grpc::codec::RequestCodec")
        .file_descriptor_set_path(out_dir.join("roomguard_descriptor.bin"))
        .compile_with_config(config, &["proto/roomguard/v1/policy.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
