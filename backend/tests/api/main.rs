//! Integration tests: one binary, each test a real HTTP test against `Application` on
//! port 0 with its own database, tracker prefix and bucket prefix. Part PUTs go to the
//! URLs the API returns, from a plain HTTP client, exactly as a browser would send them.
//!
//! Backends: the embedded defaults (SQLite, in-process tracker, local store), and the
//! distributed set (PostgreSQL, Redis, Garage as a real process on 127.0.0.1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod accounts;
mod completion;
mod errors;
mod hardening;
mod integrity;
mod isolation;
mod large;
mod limits;
mod queue;
mod service;
mod shares;
mod uploads;
