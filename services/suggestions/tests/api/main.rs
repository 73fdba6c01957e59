//! The suggestions service's API tests: REST in-process (`oneshot`), gRPC over a local port. One
//! binary, a module per area; the running platform comes from `banli-testkit`.

use banli_testkit as support;

mod approval;
mod bad_input;
mod consistency;
mod documents;
mod grpc;
mod lifecycle;
mod policy_matrix;
mod publication;
mod review;
mod tls;
