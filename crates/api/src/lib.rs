//! What every service's API shares: one error-code enum mapped to HTTP statuses and gRPC codes,
//! the authenticated caller, RFC 9457 problem documents, the request extractors and the layers
//! around a router.
//!
//! Must never: hold a service's routes, SQL or domain rules.

pub mod cache;
mod clock;
pub mod consistency;
pub mod error;
mod extract;
pub mod grpc;
pub mod http;
mod idempotency;
pub mod metrics;
mod principal;
pub mod server;
#[cfg(feature = "test-pki")]
pub mod test_pki;
pub mod tls;

pub use clock::Clock;
pub use error::{AppError, ErrorCode};
pub use idempotency::{Once, idempotent};
pub use principal::{Authenticator, Principal, token};
