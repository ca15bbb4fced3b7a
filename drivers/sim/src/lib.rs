//! The simulated card.
