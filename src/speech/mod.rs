//! The IVR's spoken output: values read from recorded prompt sets, free text through TTS.
//!
//! Numbers, amounts of money, dates, times and digit strings are spoken by playing short
//! recorded prompts one after the other ([`say`] decides which, [`promptset`] makes and finds
//! the files). A prompt set is built once, from any voice (a TTS engine or a voice talent's
//! recordings with the same file names), so every value a caller hears sounds like the same
//! voice, and speaking a value at run time costs nothing but playing files.
//!
//! Free text (a customer's name, a message typed by a supervisor) cannot be pre-recorded, so
//! it goes through a [`Tts`] engine ([`EspeakNg`] by default). Rendering takes a noticeable
//! fraction of a second, so [`TtsCache`] keeps every rendering on disk as an 8 kHz WAV file
//! keyed by a hash of the engine, voice, language and text: the same sentence is rendered once.
//!
//! Everything here runs on the control plane, never on the real-time media thread: TTS runs a
//! child process and both TTS and prompt sets do file IO.

pub mod promptset;
pub mod say;
pub mod tts;

pub use promptset::{build_prompt_set, missing_items, prompt_path};
pub use say::{item_text, items, say_amount, say_date, say_digits, say_number, say_time, Lang, SayError};
pub use tts::{EspeakNg, Tts, TtsCache, TtsError};
