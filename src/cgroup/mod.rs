//! cgroups: detect the layout, and limit memory, cpu and pids on v1 and v2.
