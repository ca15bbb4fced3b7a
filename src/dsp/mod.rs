//! Native telephony DSP.
