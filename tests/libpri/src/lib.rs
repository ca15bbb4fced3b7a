//! libpri as a test peer (being written).
