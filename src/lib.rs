//! ctwatch
pub mod cert;
pub mod der;
pub mod leaf;
