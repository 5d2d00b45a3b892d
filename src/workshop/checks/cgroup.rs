//! Checks for the cgroup lessons.
