//! The one integration-test binary of `anemone-drivers`: bus behaviour with scripted
//! `embedded-hal-mock` transactions, and property tests.

mod pulse;
