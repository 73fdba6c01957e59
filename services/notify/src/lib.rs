//! The notification service (通知): deputies hear of their suggestions — assigned (who handles
//! them, by when), an extension approved, the reply, re-handling, progress on commitments, the
//! closure of follow-up — in an in-platform inbox, by e-mail over SMTP and by SMS through an
//! HTTP gateway. Each delivery is recorded with its outcome, retried with backoff, queued once
//! per event and deputy.

pub mod app;
pub mod consumer;
pub mod deliver;
pub mod grpc;
pub mod http;
pub mod messages;
pub mod service;
pub mod store;
