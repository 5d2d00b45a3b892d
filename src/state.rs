//! Where minidock keeps its state, and the two disciplines every writer of that state follows.
//!
//! Many `minidock` processes run at once (`run` in one terminal, `ps` and `rmi` in another), and
//! any of them can be killed at any instant. Two rules keep the state readable through that:
//!
//! 1. **A file is replaced, never edited in place.** [`write_atomic`] writes a temp file in the
//!    same directory, fsyncs it, and rename(2)s it over the old name. rename(2) is atomic within
//!    one filesystem: a reader opens either the old file or the new one, never a torn mix, and a
//!    crash leaves at worst a stray temp file. So readers need no lock at all.
//! 2. **A read-modify-write holds a lock.** Two writers that both read `index.json`, add their
//!    tag and write it back would lose one tag. [`lock_file`] takes an flock(2) on a lock file
//!    for the whole read-modify-write; the kernel drops the lock when the process dies, so a
//!    SIGKILLed writer never leaves the store locked.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::explain::{self, Chapter};

/// The state root when neither `--root` nor `MINIDOCK_ROOT` says otherwise (Docker's is
/// `/var/lib/docker`).
pub const DEFAULT_ROOT: &str = "/var/lib/minidock";

/// The environment variable that overrides [`DEFAULT_ROOT`].
pub const ROOT_ENV: &str = "MINIDOCK_ROOT";

// ANCHOR: root
/// Resolves the state root: `--root DIR` wins, then `$MINIDOCK_ROOT`, then
/// `/var/lib/minidock` (rootless: `$XDG_DATA_HOME/minidock`, see [`crate::rootless`]). Tests always pass a temp dir, so they never touch the real store.
pub fn root(cli_root: Option<&Path>) -> PathBuf {
    if let Some(dir) = cli_root {
        return dir.to_path_buf();
    }
    match std::env::var_os(ROOT_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ if crate::rootless::active() => crate::rootless::data_root(),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}
// ANCHOR_END: root

// ANCHOR: write_atomic
/// Replaces `path` with `bytes` atomically, with mode 0644 (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with an explicit mode, for files that must stay private (credentials: 0600).
pub fn write_atomic_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace(path, bytes, mode, Durability::Synced)
}

/// Replaces `path` atomically like [`write_atomic`], but without the fsync: for the files that
/// describe a container's live process (its state, its generated /etc files). Readers still
/// see the old or the new file, never a half-written one; only a power cut can lose the last
/// version, and a power cut also ends the process the file describes. This keeps several
/// disk flushes off the path of every `minidock run` (runc does not flush its state either).
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o644, Durability::Unsynced)
}

/// [`write_atomic_unsynced`] with an explicit mode: a container's spec and state hold its
/// environment, which may carry secrets, so they are written 0600.
pub fn write_atomic_unsynced_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace(path, bytes, mode, Durability::Unsynced)
}

/// Makes `dir` (and its missing parents) a directory only its owner may enter: mode 0700,
/// set on the directory itself whether it was just made or already there with a wider mode
/// (chmod(2), so the umask plays no part). Parents keep the mode mkdir gives them.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = fs::metadata(dir)
        .with_context(|| format!("stat {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o7777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    }
    Ok(())
}

#[derive(PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

fn replace(path: &Path, bytes: &[u8], mode: u32, durability: Durability) -> Result<()> {
    let dir = parent_dir(path);
    // The temp file must live in the same directory: rename(2) cannot cross filesystems, and a
    // temp file elsewhere (/tmp is often tmpfs) would turn the rename into EXDEV.
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    temp.write_all(bytes)
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", temp.path().display()))?;
    // fsync before rename: otherwise a power cut after the rename can leave the new name
    // pointing at a file whose data never reached the disk (an empty index.json).
    if durability == Durability::Synced {
        temp.as_file()
            .sync_all()
            .with_context(|| format!("fsync {}", temp.path().display()))?;
    }
    temp.persist(path)
        .map_err(|err| err.error)
        .with_context(|| format!("renaming a temp file to {}", path.display()))?;
    Ok(())
}
// ANCHOR_END: write_atomic

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An flock(2) held on a lock file; dropping it releases the lock (closing the descriptor
/// does, see flock(2)).
#[derive(Debug)]
pub struct Lock {
    _held: Flock<File>,
    path: PathBuf,
}

impl Lock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

// ANCHOR: lock_file
/// Takes an exclusive flock(2) on `path` (created if missing), waiting for other holders.
pub fn lock_file(path: &Path) -> Result<Lock> {
    lock(path, FlockArg::LockExclusive, "LOCK_EX")
}

/// Takes a shared flock(2) on `path`: any number of shared holders at once, none while an
/// exclusive holder has it. The image store uses it so that parallel imports and pulls run side
/// by side while garbage collection waits for all of them.
pub fn lock_file_shared(path: &Path) -> Result<Lock> {
    lock(path, FlockArg::LockShared, "LOCK_SH")
}

/// Takes an exclusive flock(2) on `path` if nobody holds it, without waiting: `None` when
/// another holder (shared or exclusive) has it. Recovery uses it to tell whether the owner of
/// some leftovers is still at work.
pub fn try_lock_file(path: &Path) -> Result<Option<Lock>> {
    let file = open_lock_file(path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(held) => Ok(Some(Lock {
            _held: held,
            path: path.to_path_buf(),
        })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => {
            Err(errno).with_context(|| format!("flock {} LOCK_EX|LOCK_NB", path.display()))
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    // std opens with O_CLOEXEC, so a container started while we hold the lock does not
    // inherit (and keep alive) the lock.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

fn lock(path: &Path, mode: FlockArg, mode_name: &str) -> Result<Lock> {
    let mut file = open_lock_file(path)?;
    explain::step(
        "lock against parallel writers",
        || format!("flock(\"{}\", {mode_name})", path.display()),
        Chapter::PuttingTogether,
    );
    loop {
        match Flock::lock(file, mode) {
            Ok(held) => {
                return Ok(Lock {
                    _held: held,
                    path: path.to_path_buf(),
                });
            }
            // A signal interrupted the wait; wait again.
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => {
                return Err(errno).with_context(|| format!("flock {} {mode_name}", path.display()));
            }
        }
    }
}
// ANCHOR_END: lock_file

/// Takes an exclusive flock(2) on the directory `path` itself (no lock file in it), waiting for
/// other holders. The directory is opened close-on-exec, so a program started while the lock
/// is held does not keep it. Errors: the directory cannot be opened (`NotFound` once it is
/// removed), or flock(2) fails.
pub fn lock_dir(path: &Path) -> Result<Lock> {
    let mut dir = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    loop {
        match Flock::lock(dir, FlockArg::LockExclusive) {
            Ok(held) => {
                return Ok(Lock {
                    _held: held,
                    path: path.to_path_buf(),
                });
            }
            Err((back, Errno::EINTR)) => dir = back,
            Err((_, errno)) => {
                return Err(errno).with_context(|| format!("flock {} LOCK_EX", path.display()));
            }
        }
    }
}

// ANCHOR: disk_full
/// Whether an I/O error says the disk is full: ENOSPC, or EDQUOT (a quota), however it was
/// wrapped (the tar and gzip readers keep the error's kind).
pub fn is_disk_full_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether an error, anywhere in its chain, is a full disk.
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(is_disk_full_io)
            || matches!(
                cause.downcast_ref::<Errno>(),
                Some(Errno::ENOSPC | Errno::EDQUOT)
            )
            || cause.downcast_ref::<DiskFull>().is_some()
    })
}

/// A full disk, said as such: which path could not be written, and the filesystem (mount point
/// and type, from /proc/self/mountinfo) that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFull {
    pub path: PathBuf,
    /// The mount point and the filesystem type, when the mount table shows them.
    pub filesystem: Option<(PathBuf, String)>,
}

impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the disk is full: no space left on device for {}",
            self.path.display()
        )?;
        if let Some((mount, kind)) = &self.filesystem {
            write!(f, " (the {kind} filesystem mounted at {})", mount.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for DiskFull {}

/// Turns an error that is a full disk into a [`DiskFull`] naming `path` (the directory the
/// operation writes to) and its filesystem; any other error, or one already turned, is
/// returned as it is. Apply it where an operation that writes ends: the message then says
/// "the disk is full" and where, instead of what the failed write was part of.
pub fn disk_full_at(err: anyhow::Error, path: &Path) -> anyhow::Error {
    if !is_disk_full(&err) || err.chain().any(|c| c.downcast_ref::<DiskFull>().is_some()) {
        return err;
    }
    anyhow::Error::new(DiskFull {
        path: path.to_path_buf(),
        filesystem: filesystem_of(path),
    })
}

/// The mount point and filesystem type holding `path` (or its nearest existing ancestor).
pub fn filesystem_of(path: &Path) -> Option<(PathBuf, String)> {
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    let real = fs::canonicalize(existing).ok()?;
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    table
        .lines()
        .filter_map(|line| {
            let mount = unescape_mount_path(line.split(' ').nth(4)?);
            let kind = line.split(" - ").nth(1)?.split(' ').next()?.to_owned();
            real.starts_with(&mount).then_some((mount, kind))
        })
        // The longest mount point wins; among equal ones, the last mounted (on top).
        .fold(
            None,
            |best: Option<(PathBuf, String)>, candidate| match &best {
                Some((mount, _)) if mount.as_os_str().len() > candidate.0.as_os_str().len() => best,
                _ => Some(candidate),
            },
        )
}

/// A mountinfo path field: spaces, tabs, newlines and backslashes are octal escapes (`\040`).
fn unescape_mount_path(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}
// ANCHOR_END: disk_full

/// The lowercase hex SHA-256 of `parts`, hashed in order: the key of a cached program.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a cache file atomically: `dir` is created 0700 if missing (whoever can write a
/// cached program chooses what it does), then `bytes` go to a temp file in `dir`, renamed to
/// `file`. Errors name the step and the path.
pub fn write_cache_file(dir: &Path, file: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("mkdir {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("temp file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("write {}", tmp.path().display()))?;
    tmp.persist(file)
        .with_context(|| format!("rename into {}", file.display()))?;
    Ok(())
}

/// Formats a time as RFC 3339 in UTC with Go's `RFC3339Nano` layout (trailing zeros of the
/// fraction dropped), the format of Docker's `Created` fields: `2024-05-01T12:34:56.5Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 timestamp (`2024-05-01T12:34:56Z`, with an optional fraction and a `Z` or
/// `±hh:mm` offset), as image configs carry them. `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Keep nanosecond precision; ignore digits beyond it.
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hh, mm) = rest[1..].split_once(':')?;
            if hh.len() != 2 || mm.len() != 2 {
                return None;
            }
            sign * (hh.parse::<i64>().ok()? * 3600 + mm.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(year, month as u32, day as u32) * 86_400
        + hour * 3600
        + minute * 60
        + second
        - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 to a (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, public domain).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_root_wins_over_the_default() {
        assert_eq!(root(Some(Path::new("/x"))), PathBuf::from("/x"));
    }

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_714_566_896, 500_000_000);
        assert_eq!(rfc3339(t), "2024-05-01T12:34:56.5Z");
        assert_eq!(parse_rfc3339("2024-05-01T12:34:56.5Z"), Some(t));
        assert_eq!(parse_rfc3339("2024-05-01T14:34:56.500+02:00"), Some(t));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-05-01T12:34:56"), None);
    }

    #[test]
    fn private_dir_makes_and_narrows_to_0700() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("a/b");
        private_dir(&fresh).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&fresh), 0o700);
        let wide = dir.path().join("wide");
        fs::create_dir(&wide).unwrap();
        fs::set_permissions(&wide, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&wide).unwrap();
        assert_eq!(mode(&wide), 0o700);
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn an_exclusive_lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock_file(&path).unwrap();
        // A second open file description of the same file cannot take it without waiting.
        let other = File::open(&path).unwrap();
        let attempt = Flock::lock(other, FlockArg::LockExclusiveNonblock);
        assert!(matches!(attempt, Err((_, Errno::EWOULDBLOCK))));
        drop(held);
        let other = File::open(&path).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_ok());
    }

    #[test]
    fn a_full_disk_is_said_with_its_filesystem() {
        let full = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("the input is not a valid tar archive");
        let said = disk_full_at(full, Path::new("/proc/self"));
        assert_eq!(
            format!("{said:#}"),
            "the disk is full: no space left on device for /proc/self \
             (the proc filesystem mounted at /proc)"
        );
        // Said once: a second, outer call keeps the first path.
        let again = disk_full_at(said, Path::new("/"));
        assert!(format!("{again}").contains("/proc/self"));
        let other = disk_full_at(anyhow::anyhow!("boom"), Path::new("/"));
        assert_eq!(format!("{other:#}"), "boom");
        assert_eq!(unescape_mount_path("/a\\040b"), PathBuf::from("/a b"));
    }

    #[test]
    fn try_lock_gives_way_to_a_shared_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let shared = lock_file_shared(&path).unwrap();
        assert!(try_lock_file(&path).unwrap().is_none());
        drop(shared);
        assert!(try_lock_file(&path).unwrap().is_some());
    }
}
