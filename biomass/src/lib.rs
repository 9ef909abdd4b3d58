//! biomass (under construction).
