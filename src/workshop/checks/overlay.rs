//! Checks for the overlay lessons.
