//! The coordination service's API tests: its commands against a running suggestions service,
//! the agency feed (REST pages, gRPC `Watch`) and webhooks. One binary, a module per area; the
//! running platform comes from `banli-testkit`.

use banli_testkit as support;

mod coordination;
mod feed;
mod substance;
mod webhooks;
