//! The units people type on a command line (`32M`, `0.5` CPUs) and the units the kernel wants
//! (bytes, microseconds of CPU time per period).
//!
//! Sizes are binary, as in Docker: `32M` is 32 MiB = 33554432 bytes (docker-run(1), "--memory").

use anyhow::{Result, bail};

/// The CFS period minidock uses, in microseconds: 100 ms, the kernel's and Docker's default
/// (`cpu.cfs_period_us` on v1, the second number of `cpu.max` on v2).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The smallest quota the kernel accepts: 1 ms per period (kernel/sched/core.c,
/// `min_cfs_quota_period`); writing less fails with EINVAL.
pub const MIN_CPU_QUOTA_US: u64 = 1_000;

/// Parses a size such as `32M`, `1.5g`, `512k`, `4096` or `64MiB` into bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        bail!("invalid size \"{text}\": it is empty (use a number with a unit, e.g. 32M)");
    }
    if trimmed.starts_with('-') {
        bail!("invalid size \"{text}\": a size cannot be negative (use e.g. 32M)");
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = match number.parse() {
        Ok(value) => value,
        Err(_) => bail!("invalid size \"{text}\": \"{number}\" is not a number (use e.g. 32M)"),
    };
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => bail!(
            "invalid size \"{text}\": unknown unit \"{unit}\" (use b, k, m, g or t, e.g. 32M)"
        ),
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        bail!("invalid size \"{text}\": too large");
    }
    Ok(bytes as u64)
}

/// Formats bytes the way people read them: `32 MiB`, `31.8 MiB`, `512 KiB`, `100 B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{value:.1} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

/// A CPU limit as the kernel's bandwidth controller sees it: `quota` microseconds of CPU time
/// in every `period` microseconds, summed over all CPUs. `--cpus 0.5` is 50000 per 100000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuQuota {
    /// The number of CPUs this quota amounts to (quota / period).
    pub fn cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// Parses `--cpus` (a positive decimal number of CPUs, as in Docker) into a quota per 100 ms.
pub fn parse_cpus(text: &str) -> Result<CpuQuota> {
    let value: f64 = match text.trim().parse() {
        Ok(value) => value,
        Err(_) => bail!("invalid --cpus \"{text}\": not a number (use e.g. 0.5 for half a CPU)"),
    };
    if !value.is_finite() || value <= 0.0 {
        bail!("invalid --cpus \"{text}\": it must be greater than 0 (use e.g. 0.5 for half a CPU)");
    }
    let quota_us = (value * CPU_PERIOD_US as f64).round();
    if quota_us < MIN_CPU_QUOTA_US as f64 {
        bail!(
            "invalid --cpus \"{text}\": below the kernel's minimum quota of {MIN_CPU_QUOTA_US} us per \
             {CPU_PERIOD_US} us period (--cpus {})",
            MIN_CPU_QUOTA_US as f64 / CPU_PERIOD_US as f64
        );
    }
    if quota_us > i64::MAX as f64 {
        bail!("invalid --cpus \"{text}\": too large");
    }
    Ok(CpuQuota {
        quota_us: quota_us as u64,
        period_us: CPU_PERIOD_US,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_like_docker() {
        assert_eq!(parse_size("32M").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("32m").unwrap(), 33554432);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        let err = |s: &str| parse_size(s).unwrap_err().to_string();
        assert!(err("32Q").contains("unknown unit \"Q\""), "{}", err("32Q"));
        assert!(err("-1").contains("cannot be negative"));
        assert!(err("").contains("empty"));
        assert!(err("M").contains("is not a number"));
        assert!(err("1.2.3M").contains("is not a number"));
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(32 << 20), "32 MiB");
        assert_eq!(format_size((32 << 20) - 200 * 1024), "31.8 MiB");
        assert_eq!(format_size(512 << 10), "512 KiB");
        assert_eq!(format_size(100), "100 B");
    }

    #[test]
    fn cpus_become_a_quota_per_100ms() {
        let half = parse_cpus("0.5").unwrap();
        assert_eq!((half.quota_us, half.period_us), (50_000, 100_000));
        assert_eq!(parse_cpus("2").unwrap().quota_us, 200_000);
        assert!((half.cpus() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn bad_cpus_are_refused() {
        let err = |s: &str| parse_cpus(s).unwrap_err().to_string();
        assert!(err("0").contains("greater than 0"));
        assert!(err("-1").contains("greater than 0"));
        assert!(err("half").contains("not a number"));
        assert!(err("0.001").contains("minimum quota"));
        assert!(err("NaN").contains("greater than 0"));
    }
}
