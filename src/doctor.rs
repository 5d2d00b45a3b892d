//! `minidock doctor`: checks this machine for everything minidock and the workshop need.
