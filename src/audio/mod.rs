//! Audio files: WAV reading and writing.
