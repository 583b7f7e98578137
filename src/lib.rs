//! ctwatch
