//! This service's outbox relay: the shared relay over the `outbox` table.

use banli_eventlog::Bus;
pub use banli_eventlog::relay::{Relay, RelayError};

use crate::store::Store;

/// The relay of this service's outbox onto `bus`.
pub fn relay(store: &Store, bus: Bus) -> Relay {
    Relay::new(store.db().clone(), store.outbox().clone(), bus)
}
