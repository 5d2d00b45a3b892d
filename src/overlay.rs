//! overlayfs: mount lower/upper/work, whiteouts and opaque dirs, upper dir -> layer diff.
