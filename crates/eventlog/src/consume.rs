//! The one way a service consumes another's events: the runner's part — admission against the
//! inbox, per-aggregate order, gaps, parking of what cannot be read — is here, once; a service
//! writes only how it reads an event ([`Apply::decode`]) and what an admitted event changes
//! ([`Apply::apply`]), committing each effect with its inbox entry (see [`Settled`]).
//!
//! Every type implementing [`Apply`] is a [`Handler`] for [`crate::runner::run`].

use std::future::Future;

use banli_db::Pool;

use crate::Envelope;
use crate::inbox::{Admission, Inbox, aggregate_type};
use crate::runner::{GAP_PATIENCE, Handled, Handler, Incoming};

/// How a consumer's events are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Version n+1 of an aggregate only after n: a later version waits (is deferred) for its
    /// predecessor, and is parked once [`GAP_PATIENCE`] deliveries have passed without it.
    PerAggregate,
    /// Each event as it comes (its source's versions skip numbers); only duplicates are skipped.
    AsTheyCome,
}

/// What the runner decided for one delivered event before the service sees it.
#[derive(Debug)]
pub enum Step<'a, E> {
    /// Admitted and read: the service applies it, or parks it for a reason of its own.
    Apply { envelope: &'a Envelope, event: E },
    /// Parked by the runner (a gap that outlived its patience, no event id, unreadable, a newer
    /// schema): the service writes the parking with its batch ([`Settled::park`]).
    Park {
        envelope: &'a Envelope,
        reason: String,
        /// Whether the aggregate moves past it (everything but a gap).
        advance: bool,
    },
    /// Nothing to write: a redelivery ([`Handled::Duplicate`]) or an event whose predecessor
    /// has not come yet ([`Handled::Deferred`]).
    Skip(Handled),
}

/// A service's part of consuming.
pub trait Apply: Send + Sync + 'static {
    /// An event as the service reads it.
    type Event: Send + Sync;
    /// How its events are admitted.
    const ORDER: Order = Order::PerAggregate;

    /// Its inbox.
    fn inbox(&self) -> &Inbox;
    /// The database its inbox lives in (admission reads it once per batch).
    fn pool(&self) -> &Pool;
    /// Reads an admitted event; `Err` is the reason it is parked (and the aggregate moves on).
    fn decode(&self, envelope: &Envelope) -> Result<Self::Event, String>;
    /// Commits the batch's steps, in order, in as few transactions as the service can: each
    /// applied event's effect with its inbox entry, each parking. One outcome per step; an
    /// `Err` means nothing was committed (the batch is delivered again).
    fn apply(
        &self,
        steps: Vec<Step<'_, Self::Event>>,
    ) -> impl Future<Output = Result<Vec<Handled>, String>> + Send;
}

/// Decides every event of a batch, in order, against the inbox and what the batch decided
/// before it.
async fn steps<'a, A: Apply>(
    consumer: &A,
    batch: &'a [Incoming],
) -> Result<Vec<Step<'a, A::Event>>, String> {
    let envelopes: Vec<&Envelope> = batch.iter().map(|i| &i.envelope).collect();
    let mut seen = consumer
        .inbox()
        .seen_on(consumer.pool(), &envelopes)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(batch.len());
    for incoming in batch {
        let e = &incoming.envelope;
        let park = |reason: String, advance: bool| Step::Park {
            envelope: e,
            reason,
            advance,
        };
        let step = match (seen.admit(e), A::ORDER) {
            (Admission::Duplicate, _) => Step::Skip(Handled::Duplicate),
            (Admission::NotAnEvent, _) => park("a message without an event id".to_owned(), false),
            (Admission::Gap { .. }, Order::PerAggregate) if incoming.attempt < GAP_PATIENCE => {
                Step::Skip(Handled::Deferred)
            }
            (Admission::Gap { expected }, Order::PerAggregate) => park(
                format!(
                    "version {expected} of this {} never arrived; later versions wait here",
                    aggregate_type(e)
                ),
                false,
            ),
            (Admission::Apply, _) | (Admission::Gap { .. }, Order::AsTheyCome) => {
                match consumer.decode(e) {
                    Ok(event) => Step::Apply { envelope: e, event },
                    Err(reason) => park(reason, true),
                }
            }
        };
        match &step {
            Step::Apply { .. } => seen.handled(e, true),
            Step::Park { advance, .. } => seen.handled(e, *advance),
            Step::Skip(_) => {}
        }
        out.push(step);
    }
    Ok(out)
}

impl<A: Apply> Handler for A {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let steps = steps(self, batch).await?;
        let out = self.apply(steps).await?;
        if out.len() != batch.len() {
            return Err(format!(
                "the consumer answered {} outcomes for {} events",
                out.len(),
                batch.len()
            ));
        }
        Ok(out)
    }
}

/// What a batch writes into its inbox in the transaction of its effects: the applied events
/// (two statements for all of them) and the parked ones. Collect with [`Settled::applied`] and
/// [`Settled::park`], write with `inbox::sqlite::settle` / `inbox::postgres::settle`. It owns
/// what it needs (no payloads of applied events), so it can go to a service's write path.
#[derive(Debug, Default)]
pub struct Settled {
    pub(crate) applied: Vec<Envelope>,
    pub(crate) parked: Vec<(Envelope, String, bool)>,
}

impl Settled {
    /// Notes an applied event.
    pub fn applied(&mut self, e: &Envelope) -> Handled {
        self.applied.push(Envelope {
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            aggregate_id: e.aggregate_id.clone(),
            aggregate_version: e.aggregate_version,
            payload: Vec::new(),
        });
        Handled::Applied
    }

    /// Takes one of the runner's steps: a skip is passed on and a parking noted, each as its
    /// outcome (`Err`); an admitted event comes back (`Ok`) for the service to apply.
    pub fn admit<'a, E>(&mut self, step: Step<'a, E>) -> Result<(&'a Envelope, E), Handled> {
        match step {
            Step::Skip(h) => Err(h),
            Step::Park {
                envelope,
                reason,
                advance,
            } => Err(self.park(envelope, reason, advance)),
            Step::Apply { envelope, event } => Ok((envelope, event)),
        }
    }

    /// Notes a parked event; `advance`: the aggregate moves past it.
    pub fn park(&mut self, e: &Envelope, reason: String, advance: bool) -> Handled {
        self.parked.push((e.clone(), reason, advance));
        Handled::Parked
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.parked.is_empty()
    }
}
