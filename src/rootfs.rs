//! The container's root filesystem: mount propagation, /proc /dev /sys, pivot_root.
