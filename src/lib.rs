//! minidock: learn how Docker works by building it.
//!
//! One module per kernel mechanism, each with a small public API. The demo binaries
//! (`ns-demo`, `cgroup-demo`, `overlay-demo`, `net-demo`) and `minidock` itself call the same
//! functions, so what the demos show is exactly what runs containers.

pub mod build;
pub mod cgroup;
pub mod cli;
pub mod container;
pub mod daemon;
pub mod doctor;
pub mod events;
pub mod explain;
pub mod format;
pub mod image;
pub mod net;
pub mod ns;
pub mod overlay;
pub mod registry;
pub mod rootfs;
pub mod rootless;
pub mod runtime;
pub mod security;
pub mod state;
pub mod syscall;
pub mod system;
pub mod tty;
pub mod volume;
pub mod workshop;
