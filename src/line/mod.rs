//! Analog line signalling (being written).
