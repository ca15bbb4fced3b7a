//! The one integration-test binary: a module per area.
mod audio;
mod dsp;
mod store;
