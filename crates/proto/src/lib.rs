//! banli's gRPC wire types, generated from `proto/` at build time. (Events are not here: their
//! contract is the domain's Rust types as JSON, with golden examples — see `docs/events.md`.)
//!
//! Generated code lives in `OUT_DIR`, never in `src/`. Receivers convert these types into
//! domain types with `TryFrom`; the domain never sees a prost `Option`.

#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.common.v1.rs"));
    }
}
#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod suggestions {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.suggestions.v1.rs"));
    }
}
#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod coordination {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.coordination.v1.rs"));
    }
}
#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod followup {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.followup.v1.rs"));
    }
}
#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod notify {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.notify.v1.rs"));
    }
}
#[allow(clippy::all, missing_debug_implementations)] // generated code
pub mod audit {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/banli.audit.v1.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every banli proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/banli_descriptor.bin"));

/// The full names (`package.Service`) of every gRPC service in the banli protos, read from
/// [`FILE_DESCRIPTOR_SET`]: what the services' route tables must cover.
pub fn service_names() -> Result<Vec<String>, prost::DecodeError> {
    use prost::Message;
    let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)?;
    Ok(fds
        .file
        .iter()
        .flat_map(|f| {
            let package = f.package.clone().unwrap_or_default();
            f.service
                .iter()
                .map(move |s| format!("{package}.{}", s.name.clone().unwrap_or_default()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_names_every_api() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("valid descriptor set");
        let packages: Vec<_> = fds.file.iter().filter_map(|f| f.package.clone()).collect();
        for p in [
            "banli.suggestions.v1",
            "banli.coordination.v1",
            "banli.followup.v1",
            "banli.audit.v1",
        ] {
            assert!(
                packages.iter().any(|x| x == p),
                "{p} missing from {packages:?}"
            );
        }
    }
}
