//! The coordination service (协办): the exchange between the units of one suggestion.
//!
//! Owns: sign-for, adjustment requests and decisions, co-handling tasks with their sub-deadline,
//! co-handling opinions as formal letters and their waivers, countersign of a joint reply,
//! disagreements and their escalation, and the copies of the lead's reply for the co-handlers.
//! It consumes the suggestions service's events (a replica of each suggestion, the task list)
//! and publishes its own; the suggestions service applies the mirrored commands from them. It
//! keeps each agency's event feed for the agency's own systems (REST pages, gRPC `Watch`) and
//! delivers it to the agencies' webhooks, signed.
//!
//! Must never: write the suggestions service's tables, or decide a suggestion rule itself (the
//! domain's guards decide, here against the replica and again in the suggestions service).

pub mod app;
pub mod command;
pub mod consumer;
pub mod dto;
pub mod feed;
pub mod grpc;
pub mod http;
pub mod notices;
pub mod service;
pub mod store;
pub mod streams;
pub mod webhooks;
