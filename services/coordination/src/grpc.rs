//! gRPC (`banli.coordination.v1`).
