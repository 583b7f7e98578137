//! ctwatch
pub mod probe;
