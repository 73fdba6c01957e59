//! API tests: REST in-process (`oneshot`), gRPC over a local port. One binary, a module per area.

mod bad_input;
mod consistency;
mod coordination;
mod feed;
mod grpc;
mod lifecycle;
mod policy_matrix;
mod support;
mod tls;
mod webhooks;
