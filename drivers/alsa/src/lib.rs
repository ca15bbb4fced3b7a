//! ALSA backend (being written).
