//! terrain (under construction).
