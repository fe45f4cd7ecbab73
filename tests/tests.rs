//! Integration tests: one binary, one module per room.

mod mqtt;
