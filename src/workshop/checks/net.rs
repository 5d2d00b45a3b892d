//! Checks for the net lessons.
