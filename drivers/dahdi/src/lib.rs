//! DAHDI backend (being written).
