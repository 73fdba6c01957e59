//! The follow-up service (跟踪督办): tracks every due date of every live assignment from the
//! suggestions service's events, sends reminders and overdue flags (late, very late) on the
//! profile's schedule through durable timers that fire once across replicas, and lists what is
//! overdue and due soon per agency. It also hosts the audit log when services run one per
//! process.
//!
//! Library first; `banli serve` and `banli serve --service followup` run it.

pub mod app;
pub mod audit_feed;
pub mod checkpoints;
pub mod consumer;
pub mod fire;
pub mod grpc;
pub mod http;
pub mod notices;
pub mod report;
pub mod service;
pub mod stages;
pub mod store;
pub mod synthetic;
pub mod topics;
pub mod webhook_notices;
