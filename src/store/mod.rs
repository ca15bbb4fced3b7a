//! The only module that touches SQLite.
