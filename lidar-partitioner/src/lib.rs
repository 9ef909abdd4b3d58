//! lidar-partitioner (under construction).
