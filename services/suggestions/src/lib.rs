//! The suggestions service (建议办理): sessions, deputies, the agency directory, suggestions with
//! their assignments, replies and feedback.
//!
//! Owns its tables and its outbox; never reads another service's tables. This crate is the
//! library; the `banli` binary runs it.

pub mod app;
pub mod command;
pub mod consumer;
pub mod dto;
pub mod error;
pub mod grpc;
pub mod http;
pub mod policy;
pub mod relay;
pub mod service;
pub mod store;
