//! Integration tests of `anemone-collector` against a real PostgreSQL and Mosquitto of
//! their own (see `anemone_collector::testkit`).

mod bad_messages;
mod chain;
mod directions;
mod faults;
mod network_page;
mod shutdown;
mod support;
