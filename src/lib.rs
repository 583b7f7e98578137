//! ctwatch
pub mod watchlist;
