//! water (under construction).
