//! System calls made as steps of the trace: each call here prints its `--explain` line
//! ([`crate::explain`]) right before the real call, and a failure carries the call as strace(1)
//! prints it, so the code that uses them reads as the sequence of calls it makes.

use crate::explain::{self, Chapter};
use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::mount::MsFlags;
use std::fmt::Display;
use std::path::Path;

/// One mount(2) call, built by what it does ([`Mount::fs`], [`Mount::bind`],
/// [`Mount::change`]) and made by [`Mount::run`].
#[derive(Clone, Copy)]
pub struct Mount<'a> {
    source: Option<&'a Path>,
    target: &'a Path,
    fstype: Option<&'a str>,
    flags: MsFlags,
    data: Option<&'a str>,
    about: Option<&'a dyn Display>,
}

impl<'a> Mount<'a> {
    fn new(
        source: Option<&'a Path>,
        target: &'a Path,
        fstype: Option<&'a str>,
        flags: MsFlags,
    ) -> Self {
        let (data, about) = (None, None);
        Mount {
            source,
            target,
            fstype,
            flags,
            data,
            about,
        }
    }

    /// A filesystem of type `fstype` on `target`; `source` is its name in the mount table
    /// (`"proc"`, `"tmpfs"`) for one without a device.
    pub fn fs(source: &'a str, target: &'a Path, fstype: &'a str, flags: MsFlags) -> Self {
        Mount::new(Some(Path::new(source)), target, Some(fstype), flags)
    }

    /// A bind mount of `source` on `target`: `MS_BIND` with `flags` (`MS_REC` for the mounts
    /// below `source` too).
    pub fn bind(source: &'a Path, target: &'a Path, flags: MsFlags) -> Self {
        Mount::new(Some(source), target, None, MsFlags::MS_BIND | flags)
    }

    /// A change to the mount at `target`: a remount (`MS_REMOUNT` with the new flags) or a
    /// propagation type (`MS_REC|MS_PRIVATE`), `flags` passed as they are.
    pub fn change(target: &'a Path, flags: MsFlags) -> Self {
        Mount::new(None, target, None, flags)
    }

    /// The filesystem's own options, mount(2)'s `data` (`"mode=755,size=65536k"`).
    pub fn data(self, data: &'a str) -> Self {
        Mount {
            data: Some(data),
            ..self
        }
    }

    /// Text shown after the call in the trace line and the error, such as the path inside the
    /// container that a `/proc/self/fd/N` target stands for.
    pub fn about(self, about: &'a dyn Display) -> Self {
        Mount {
            about: Some(about),
            ..self
        }
    }

    // ANCHOR: mount_run
    /// The call as strace(1) prints it ([`explain::mount_call`]), then the `about` text.
    pub fn call(&self) -> String {
        let call =
            explain::mount_call(self.source, self.target, self.fstype, self.flags, self.data);
        match self.about {
            Some(about) => format!("{call} {about}"),
            None => call,
        }
    }

    /// Prints the step `what` of `chapter` under `--explain`, then makes the call. Errors: the
    /// errno (see [`errno`]) with the call as its context.
    pub fn run(self, chapter: Chapter, what: &str) -> Result<()> {
        explain::step(what, || self.call(), chapter);
        let (source, target, fstype) = (self.source, self.target, self.fstype);
        nix::mount::mount(source, target, fstype, self.flags, self.data)
            .with_context(|| self.call())
    }
    // ANCHOR_END: mount_run
}

/// The errno an error of this module carries, for a caller that handles one (`EPERM` when a
/// user namespace may not mount a filesystem, say).
pub fn errno(err: &anyhow::Error) -> Option<Errno> {
    err.downcast_ref::<Errno>().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_as_strace_prints_them() {
        let (dev, proc) = (Path::new("/r/dev"), Path::new("/proc/self/fd/7"));
        let tmpfs = Mount::fs("tmpfs", dev, "tmpfs", MsFlags::MS_NOSUID).data("mode=755");
        assert_eq!(
            tmpfs.call(),
            r#"mount("tmpfs", "/r/dev", "tmpfs", MS_NOSUID, "mode=755")"#
        );
        let over = "(/proc/kcore)";
        let bind = Mount::bind(Path::new("/dev/null"), proc, MsFlags::empty()).about(&over);
        assert_eq!(
            bind.call(),
            r#"mount("/dev/null", "/proc/self/fd/7", NULL, MS_BIND, NULL) (/proc/kcore)"#
        );
        let private = Mount::change(Path::new("/"), MsFlags::MS_REC | MsFlags::MS_PRIVATE);
        assert_eq!(
            private.call(),
            r#"mount(NULL, "/", NULL, MS_REC|MS_PRIVATE, NULL)"#
        );
    }

    #[test]
    fn a_failure_names_the_call_and_keeps_its_errno() {
        let missing = Path::new("/nonexistent/minidock-syscall-test");
        let err = Mount::fs("tmpfs", missing, "tmpfs", MsFlags::empty())
            .run(Chapter::Namespaces, "mount a tmpfs")
            .unwrap_err();
        assert!(
            format!("{err:#}").starts_with(r#"mount("tmpfs", "/nonexistent/"#),
            "{err:#}"
        );
        assert!(
            matches!(errno(&err), Some(Errno::ENOENT | Errno::EPERM)),
            "{err:#}"
        );
    }
}
