//! The sinhtrac gRPC service (`sinhtrac.v1.Biometrics`) and its generated protocol types.
//!
//! The `sinhtrac` binary (command line) is a thin layer over this library: `sinhtrac serve` runs
//! [`service::serve`]; `sinhtrac client` and `sinhtrac load` use the generated [`proto`] client.

pub mod service;

/// Types and client/server stubs generated from `proto/sinhtrac/v1/sinhtrac.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("sinhtrac.v1");

    /// Encoded descriptor set of the protos, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sinhtrac_v1_descriptor.bin"));
}
