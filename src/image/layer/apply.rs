//! The safe layer unpacker.
//!
//! Every image layer that minidock pulls or loads comes through here, and a layer is input
//! from the network: it must be treated as hostile. The rules, each with the attack it stops:
//!
//! * Entry names are cleaned as text first (`path.rs`): no absolute paths, no `..`.
//! * Every file is created relative to a directory fd that was reached without following a
//!   single symlink (`beneath.rs`), so a symlink planted by an earlier entry or an earlier
//!   layer (`etc -> /etc`, then `etc/passwd`) cannot redirect a write (CVE-2014-9356,
//!   CVE-2021-38511).
//! * The final component is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, or `mkdirat`,
//!   `symlinkat`, `linkat`, `mknodat`, which never follow it either. When the name already
//!   exists, it is unlinked first and created anew. Writing *through* an existing entry is how
//!   a hardlink or symlink planted earlier in the same archive used to overwrite any file
//!   (CVE-2018-20990 in the Rust tar crate, CVE-2014-6407 in Docker).
//! * Hardlink targets are cleaned and resolved the same way, and `linkat` is called without
//!   `AT_SYMLINK_FOLLOW`, so a link can only point at a file inside the layer.
//! * Whiteouts name one component in a directory reached safely; `.wh..` cannot name the
//!   parent.
//! * Metadata is set on the file descriptor we created (`fchown`, `fchmod`, `futimens`), or
//!   with `AT_SYMLINK_NOFOLLOW`, never by path after the fact: containerd's CVE-2021-32760
//!   chmod-ed host files through a symlink that way. Directory modes and times are applied at
//!   the end (a later entry inside a directory changes its mtime); that pass re-resolves each
//!   directory beneath the root and skips one that a later entry replaced by a symlink.
//! * Device nodes only as root; setuid/setgid bits are kept (images need `su`, `ping`...).
//! * Limits: entries per layer, pax header and long-name sizes, path length. A tar bomb of
//!   empty files or a multi-gigabyte "name" stops with an error, not an exhausted disk or OOM.
//! * Any violation fails the whole layer with one line naming the entry. The caller unpacks
//!   into a temporary directory and renames it into place only on success
//!   ([`super::unpack_to_new_dir`]), so a failed layer never looks complete.

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;
use tar::EntryType;

use super::beneath::{self, WalkError, lstat_at};
use super::codec::{self, Compression, LayerDigests};
use super::path::{self, show};
use super::pax;
use super::sparse::{self, PaxSparse, PaxSparseKind, SparseMap};
use super::tarstream::TarStream;
use crate::explain::{self, Chapter};

/// The name prefix that marks a whiteout in a layer (image-spec `layer.md`, "Whiteouts").
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry that makes its directory opaque: nothing below it in lower layers shows through.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to treat a directory as opaque (Documentation/filesystems/
/// overlayfs.rst, "whiteouts and opaque directories").
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The same xattr in the `user.` namespace, which overlayfs reads instead when mounted with
/// `userxattr` (in a user namespace, where `trusted.*` xattrs cannot be set).
pub const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The opaque xattr this process writes and its overlays read: [`USER_OVERLAY_OPAQUE_XATTR`]
/// in rootless mode ([`crate::rootless::active`]), else [`OVERLAY_OPAQUE_XATTR`].
pub fn opaque_xattr() -> &'static str {
    if crate::rootless::active() {
        USER_OVERLAY_OPAQUE_XATTR
    } else {
        OVERLAY_OPAQUE_XATTR
    }
}

/// The default limit on entries per layer. Large real layers (a node_modules tree, a full
/// distribution) have a few hundred thousand; a million empty files is an attack on the inode
/// table, not an image.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
/// Largest pax extended header we read into memory: enough for many xattrs, far below what
/// would hurt. The tar format lets a header claim any size.
pub const MAX_PAX_BYTES: u64 = 1 << 20;
/// How many entries the explain trace shows before going quiet.
const TRACED_ENTRIES: u32 = 8;
/// Directory fds kept open between entries (tar streams list a directory's files together).
const DIR_CACHE: usize = 256;
/// Files up to this size are read whole and written with one write(2).
const WHOLE_FILE: u64 = 4 << 20;

/// What to do with whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// OCI semantics on a flat root filesystem: a whiteout deletes the path from DIR and an
    /// opaque marker deletes what lower layers left in its directory.
    Apply,
    /// DIR will be one overlayfs lower layer: recreate whiteouts in the kernel's own format
    /// (a character device 0/0, and the `trusted.overlay.opaque="y"` xattr), so that overlayfs
    /// hides the lower layers' files itself.
    Overlay,
    /// Not a layer but a plain archive (`cp` into a container, as Docker's `Untar`): `.wh.`
    /// names are ordinary files, written as they are.
    Literal,
}

/// Options of [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: Whiteouts,
    pub max_entries: u64,
    /// Make device nodes. Default: only when running as root (mknod(2) needs CAP_MKNOD).
    pub allow_devices: bool,
    /// chown entries to the uid/gid in the archive. Default: only as root, as GNU tar does.
    pub preserve_owners: bool,
    /// Fail unless the blob's sha256 (the manifest's digest) is this, `sha256:<hex>`.
    pub expect_digest: Option<String>,
    /// Fail unless the uncompressed tar's sha256 (the config's diff_id) is this.
    pub expect_diff_id: Option<String>,
    /// syncfs(2) the target before returning, so a crash cannot leave a layer that was
    /// reported complete with empty files. Costs a full writeback of the layer.
    pub sync: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        let root = nix::unistd::geteuid().is_root();
        ApplyOptions {
            whiteouts: Whiteouts::Apply,
            max_entries: DEFAULT_MAX_ENTRIES,
            allow_devices: root,
            preserve_owners: root,
            expect_digest: None,
            expect_diff_id: None,
            sync: false,
        }
    }
}

impl ApplyOptions {
    /// The options for a directory that will be an overlayfs lower layer.
    pub fn overlay_lower() -> Self {
        ApplyOptions {
            whiteouts: Whiteouts::Overlay,
            ..ApplyOptions::default()
        }
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub digests: LayerDigests,
    /// Entries in the archive (files, directories, links, whiteouts...).
    pub entries: u64,
}

/// Applies one layer blob onto the directory `dir`. See the module documentation for the
/// safety rules. On error, `dir` may hold part of the layer: use
/// [`super::unpack_to_new_dir`] when that must not be visible.
// ANCHOR: apply
pub fn apply<R: Read + Send>(
    blob: R,
    compression: Compression,
    dir: &Path,
    opts: &ApplyOptions,
) -> Result<Applied> {
    explain::step(
        "open the directory to unpack into",
        || format!("open({dir:?}, O_PATH|O_DIRECTORY)"),
        Chapter::Overlay,
    );
    let root = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", dir.display()))?;
    let (entries, digests) = codec::with_decoded(blob, compression, |stream| {
        let mut unpacker = Unpacker::new(root.as_fd(), opts)?;
        unpacker.run(stream)?;
        unpacker.finish()?;
        Ok(unpacker.entries)
    })?;
    if let Some(want) = &opts.expect_digest
        && *want != digests.digest
    {
        bail!("the layer's digest is {}, expected {want}", digests.digest);
    }
    if let Some(want) = &opts.expect_diff_id
        && *want != digests.diff_id
    {
        bail!(
            "the layer's diff_id is {}, expected {want}",
            digests.diff_id
        );
    }
    if opts.sync {
        explain::step(
            "flush the layer to disk",
            || "syncfs(dir)".into(),
            Chapter::Overlay,
        );
        nix::unistd::syncfs(&root).context("syncfs")?;
    }
    Ok(Applied { digests, entries })
}
// ANCHOR_END: apply

/// Attributes of an entry, from its header and pax records.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// One archive member, with every extension header folded in.
struct Member {
    /// The name as written in the archive, for error messages.
    raw: Vec<u8>,
    kind: EntryType,
    link: Option<Vec<u8>>,
    /// Bytes of data stored in the archive (for a sparse file, its chunks and any map).
    size: u64,
    device: (u32, u32),
    meta: Meta,
    sparse: Sparse,
}

/// How a regular file's data lies in the archive (see `sparse.rs`).
enum Sparse {
    /// All of it, in order.
    No,
    /// Chunks placed by this map.
    Map(SparseMap),
    /// A PAX 1.0 sparse file of this real size: the map starts the data.
    InData(u64),
}

impl Member {
    /// For an old GNU sparse entry (type `S`), reads the extension blocks of its map, which
    /// come before its data, and makes it a regular file placed by that map.
    fn read_old_gnu_map<R: Read>(
        mut self,
        header: &tar::Header,
        archive: &mut TarStream<R>,
    ) -> Result<Self> {
        if self.kind != EntryType::GNUSparse {
            return Ok(self);
        }
        let map = sparse::old_gnu(header, || archive.read_block())
            .map_err(|e| entry_error(&self.raw, e))?;
        self.kind = EntryType::Regular;
        self.sparse = Sparse::Map(map);
        Ok(self)
    }
}

/// Extension headers seen since the last real entry; they describe the next one.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// A directory whose mode and times are set once everything inside it exists.
struct DeferredDir {
    path: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    /// The same directory as `root`, shareable like the cached parents.
    root_dir: Rc<OwnedFd>,
    opts: &'a ApplyOptions,
    /// Open directories by cleaned path. Cleared whenever anything is removed, because a
    /// cached fd of a removed directory would silently write into a deleted inode.
    dirs: HashMap<Vec<u8>, Rc<OwnedFd>>,
    /// Paths this layer created anew: everything at or below them is this layer's own.
    fresh: HashSet<Vec<u8>>,
    /// Directories that hold something of this layer (ancestors of its entries). A whiteout or
    /// opaque marker on one of them removes only what the lower layers left there: image-spec
    /// says whiteouts apply to lower layers only, whatever their order in the archive.
    touched: HashSet<Vec<u8>>,
    deferred: Vec<DeferredDir>,
    entries: u64,
    umask: Option<u32>,
    buf: Vec<u8>,
    traced: u32,
}

/// An error about one entry: the one line the user sees.
fn entry_error(raw: &[u8], reason: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("entry {}: {reason}", show(raw))
}

fn timespec(secs: i64, nanos: i64) -> TimeSpec {
    TimeSpec::new(secs, nanos)
}

impl<'a> Unpacker<'a> {
    fn new(root: BorrowedFd<'a>, opts: &'a ApplyOptions) -> Result<Self> {
        let root_dir = root
            .try_clone_to_owned()
            .context("duplicating the directory fd")?;
        Ok(Unpacker {
            root,
            root_dir: Rc::new(root_dir),
            opts,
            dirs: HashMap::new(),
            fresh: HashSet::new(),
            touched: HashSet::new(),
            deferred: Vec::new(),
            entries: 0,
            umask: beneath::current_umask(),
            buf: Vec::new(),
            traced: 0,
        })
    }

    fn trace(&mut self, what: &str, call: impl FnOnce() -> String) {
        if explain::enabled() && self.traced < TRACED_ENTRIES {
            self.traced += 1;
            explain::step(what, call, Chapter::Overlay);
        }
    }

    // ANCHOR: run
    fn run(&mut self, stream: &mut codec::ChunkReader) -> Result<()> {
        // We read pax and GNU long-name headers ourselves, with size limits: a header of any
        // claimed size is never read into memory.
        let mut archive = TarStream::new(stream);
        let mut pending = Pending::default();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let header = match archive.next_header() {
                Ok(None) => break,
                Ok(Some(header)) => header,
                Err(e) => {
                    return Err(match &last {
                        Some(raw) => crate::cli::untrusted_error(
                            format_args!("after entry {}", show(raw)),
                            e,
                        ),
                        None => crate::cli::untrusted_error("at the first entry", e),
                    });
                }
            };
            let header_name = header.path_bytes().into_owned();
            let kind = header.entry_type();
            match kind {
                EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
                    let limit = if kind == EntryType::XHeader {
                        MAX_PAX_BYTES
                    } else {
                        path::MAX_PATH as u64 + 1
                    };
                    let data = read_extension(&mut archive, &header_name, limit)?;
                    let slot = match kind {
                        EntryType::GNULongName => &mut pending.long_name,
                        EntryType::GNULongLink => &mut pending.long_link,
                        _ => &mut pending.pax,
                    };
                    if slot.replace(data).is_some() {
                        return Err(entry_error(
                            &header_name,
                            "two extension headers of the same kind describe one entry",
                        ));
                    }
                    continue;
                }
                EntryType::XGlobalHeader => {
                    // Global pax records (usually a comment) set nothing we use; read them
                    // within the same limit and move on.
                    self.count(&header_name)?;
                    read_extension(&mut archive, &header_name, MAX_PAX_BYTES)?;
                    continue;
                }
                _ => {}
            }
            let member = member(&header, kind, header_name, std::mem::take(&mut pending))?;
            archive.set_size(member.size);
            let member = member.read_old_gnu_map(&header, &mut archive)?;
            self.count(&member.raw)?;
            let raw = member.raw.clone();
            self.member(&mut archive, member)?;
            last = Some(raw);
        }
        if !pending.is_empty() {
            bail!("the archive ends with an extension header that describes no entry");
        }
        Ok(())
    }
    // ANCHOR_END: run

    fn count(&mut self, raw: &[u8]) -> Result<()> {
        self.entries += 1;
        if self.entries > self.opts.max_entries {
            return Err(entry_error(
                raw,
                format!(
                    "over the limit of {} entries per layer",
                    self.opts.max_entries
                ),
            ));
        }
        Ok(())
    }

    /// Applies one real entry.
    fn member(&mut self, data: &mut impl Read, m: Member) -> Result<()> {
        let raw = m.raw.as_slice();
        let clean = path::clean(raw).map_err(|e| entry_error(raw, e))?;
        let (parent, name) = path::split(&clean);
        let components = || clean.split(|&b| b == b'/');
        // AUFS kept its own bookkeeping under `.wh..wh.` names (`.wh..wh.plnk`, ...); Docker
        // skips them when importing, and so do we.
        let layer = self.opts.whiteouts != Whiteouts::Literal;
        if layer
            && components().any(|c| c.starts_with(b".wh..wh.") && c != OPAQUE_MARKER.as_bytes())
        {
            return Ok(());
        }
        if let Some(bad) = parent
            .split(|&b| b == b'/')
            .find(|c| layer && c.starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(entry_error(
                raw,
                format!("{} is a whiteout name and cannot be a directory", show(bad)),
            ));
        }
        if layer && name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(raw, parent, name);
        }
        let is_dir = m.kind == EntryType::Directory
            // Pre-POSIX tar marked directories only by a trailing slash on a regular entry.
            || (m.kind == EntryType::Regular && raw.ends_with(b"/"));
        if clean.is_empty() {
            if !is_dir {
                return Err(entry_error(
                    raw,
                    "names the layer root, which can only be a directory",
                ));
            }
            self.deferred.push(DeferredDir {
                path: Vec::new(),
                mode: m.meta.mode,
                uid: m.meta.uid,
                gid: m.meta.gid,
                mtime: m.meta.mtime,
            });
            return Ok(());
        }
        if is_dir {
            return self.directory(raw, &clean, m.meta);
        }
        let dir = self.parent(raw, parent, true)?;
        match m.kind {
            EntryType::Regular | EntryType::Continuous => {
                self.regular(raw, &dir, name, data, m.size, &m.meta, m.sparse)?
            }
            EntryType::Symlink => {
                let target = m
                    .link
                    .ok_or_else(|| entry_error(raw, "symlink without a target"))?;
                if target.is_empty() || target.contains(&0) {
                    return Err(entry_error(
                        raw,
                        "symlink target is empty or has a NUL byte",
                    ));
                }
                // The target is only data: a symlink may point anywhere (`/bin/sh` is fine).
                // It is dangerous only when followed, and nothing here ever follows one.
                self.trace("create a symlink", || {
                    format!("symlinkat({}, dirfd, {})", show(&target), show(name))
                });
                self.replace_leaf(raw, &dir, name, |d, n| symlinkat(&target[..], d, n))?;
                self.set_meta_at(raw, &dir, name, &m.meta, false)?;
            }
            EntryType::Link => {
                let target = m
                    .link
                    .ok_or_else(|| entry_error(raw, "hardlink without a target"))?;
                self.hardlink(raw, &clean, &dir, name, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind, what) = match m.kind {
                    EntryType::Char => (SFlag::S_IFCHR, "character device"),
                    EntryType::Block => (SFlag::S_IFBLK, "block device"),
                    _ => (SFlag::S_IFIFO, "fifo"),
                };
                if kind != SFlag::S_IFIFO && !self.opts.allow_devices {
                    return Err(entry_error(
                        raw,
                        format!("a {what} can only be created as root (CAP_MKNOD)"),
                    ));
                }
                let dev = makedev(u64::from(m.device.0), u64::from(m.device.1));
                let perm = Mode::from_bits_truncate(m.meta.mode & 0o7777);
                self.trace(&format!("create a {what}"), || {
                    format!(
                        "mknodat(dirfd, {}, {what} {}:{})",
                        show(name),
                        m.device.0,
                        m.device.1
                    )
                });
                self.replace_leaf(raw, &dir, name, |d, n| mknodat(d, n, kind, perm, dev))?;
                self.set_meta_at(raw, &dir, name, &m.meta, true)?;
            }
            other => {
                return Err(entry_error(
                    raw,
                    format!("unsupported entry type {:?}", char::from(other.as_byte())),
                ));
            }
        }
        self.mark_fresh(clean);
        Ok(())
    }

    /// The directory `parent` (cleaned), opened beneath the root without following symlinks,
    /// and created if missing when `create`.
    fn parent(&mut self, raw: &[u8], parent: &[u8], create: bool) -> Result<Rc<OwnedFd>> {
        self.parent_dir(parent, create)
            .map_err(|e| entry_error(raw, e.describe()))
    }

    fn parent_dir(&mut self, parent: &[u8], create: bool) -> Result<Rc<OwnedFd>, WalkError> {
        if parent.is_empty() {
            return Ok(self.root_dir.clone());
        }
        if let Some(fd) = self.dirs.get(parent) {
            return Ok(fd.clone());
        }
        self.trace("reach the parent, refusing symlinks", || {
            format!(
                "openat2(root, {}, RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)",
                show(parent)
            )
        });
        let Unpacker {
            root, fresh, dirs, ..
        } = self;
        let mut note = |made: &[u8]| {
            fresh.insert(made.to_vec());
        };
        let fd = beneath::open_dir(
            *root,
            parent,
            true,
            if create { Some(&mut note) } else { None },
        )?;
        if dirs.len() >= DIR_CACHE {
            dirs.clear();
        }
        let fd = Rc::new(fd);
        dirs.insert(parent.to_vec(), fd.clone());
        Ok(fd)
    }

    /// Records that `clean` now holds this layer's entry, and that its ancestors hold
    /// something of this layer.
    fn mark_fresh(&mut self, clean: Vec<u8>) {
        self.mark_touched(path::split(&clean).0);
        self.fresh.insert(clean);
    }

    /// Records that the directory `dir` and its ancestors hold something of this layer.
    fn mark_touched(&mut self, mut dir: &[u8]) {
        // Stop at the first one already known: its own ancestors were added with it.
        while !dir.is_empty() && self.touched.insert(dir.to_vec()) {
            dir = path::split(dir).0;
        }
    }

    /// Creates a leaf with `make`; if the name exists, removes it and tries once more. That is
    /// image-spec's "changeset over existing files": unlink, then recreate. Never open and
    /// truncate the existing file: it could be a hardlink to something that must not change.
    fn replace_leaf<T>(
        &mut self,
        raw: &[u8],
        dir: &OwnedFd,
        name: &[u8],
        mut make: impl FnMut(BorrowedFd<'_>, &[u8]) -> nix::Result<T>,
    ) -> Result<T> {
        match make(dir.as_fd(), name) {
            Ok(value) => Ok(value),
            Err(Errno::EEXIST) => {
                self.remove_existing(raw, dir, name)?;
                make(dir.as_fd(), name).map_err(|e| entry_error(raw, e.desc()))
            }
            Err(e) => Err(entry_error(raw, e.desc())),
        }
    }

    fn remove_existing(&mut self, raw: &[u8], dir: &OwnedFd, name: &[u8]) -> Result<()> {
        let is_dir = lstat_at(dir.as_fd(), name)
            .map(|st| beneath::kind(&st) == SFlag::S_IFDIR)
            .unwrap_or(false);
        if is_dir {
            self.dirs.clear();
            beneath::remove_all_at(dir.as_fd(), name)
        } else {
            unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir)
        }
        .map_err(|e| entry_error(raw, format!("replacing the existing entry: {}", e.desc())))
    }

    // ANCHOR: regular
    /// A regular file: created fresh (never opened if it exists), its data written, then its
    /// metadata set through the same file descriptor.
    #[allow(clippy::too_many_arguments)]
    fn regular(
        &mut self,
        raw: &[u8],
        dir: &OwnedFd,
        name: &[u8],
        data: &mut impl Read,
        size: u64,
        meta: &Meta,
        sparse: Sparse,
    ) -> Result<()> {
        let mut file = self.create_file(raw, dir, name, meta)?;
        self.write_data(raw, &mut file, data, size, sparse)?;
        self.set_meta_fd(raw, file.as_fd(), meta)
    }
    // ANCHOR_END: regular

    // ANCHOR: create_file
    /// Creates the file `name` in `dir` with `O_CREAT|O_EXCL|O_NOFOLLOW`, which fails on any
    /// existing name, symlinks included, so this never writes through a link: an existing
    /// entry is unlinked first and the file made anew (the image-spec's "changeset over
    /// existing files").
    fn create_file(&mut self, raw: &[u8], dir: &OwnedFd, name: &[u8], meta: &Meta) -> Result<File> {
        let mode = Mode::from_bits_truncate(meta.mode & 0o7777);
        self.trace("create a file, never following", || {
            format!(
                "openat(dirfd, {}, O_CREAT|O_EXCL|O_NOFOLLOW, {:o})",
                show(name),
                meta.mode & 0o7777
            )
        });
        // O_EXCL fails on any existing name, symlinks included, so this never writes through
        // a link: replace_leaf unlinks the old entry and creates a new file.
        let fd = self.replace_leaf(raw, dir, name, |d, n| {
            openat(
                d,
                n,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode,
            )
        })?;
        Ok(File::from(fd))
    }
    // ANCHOR_END: create_file

    // ANCHOR: write_data
    /// Copies the entry's `size` bytes from the archive into `file`: a sparse file's chunks
    /// where its map puts them, a small file in one read and one write(2), a big one in
    /// chunks of the same 1 MiB buffer. A full disk keeps its kind in the error.
    fn write_data(
        &mut self,
        raw: &[u8],
        file: &mut File,
        data: &mut impl Read,
        size: u64,
        sparse: Sparse,
    ) -> Result<()> {
        let reading = |e: std::io::Error| entry_error(raw, format!("reading its data: {e}"));
        // A full disk keeps its kind, so the command can say that the disk is full.
        let writing = |e: std::io::Error| {
            if crate::state::is_disk_full_io(&e) {
                anyhow::Error::new(e).context(format!("entry {}: writing", show(raw)))
            } else {
                entry_error(raw, format!("writing: {e}"))
            }
        };
        if let Some(map) = sparse_map(raw, data, size, sparse)? {
            self.sparse_data(raw, file, data, &map)?;
        } else if size <= WHOLE_FILE {
            // Small files (most of an image) with one read from the stream and one write(2).
            self.buf.resize(size as usize, 0);
            data.read_exact(&mut self.buf).map_err(reading)?;
            file.write_all(&self.buf).map_err(writing)?;
        } else {
            // Big ones in chunks of the same buffer.
            self.buf.resize(1 << 20, 0);
            let mut left = size;
            while left > 0 {
                let n = left.min(self.buf.len() as u64) as usize;
                data.read_exact(&mut self.buf[..n]).map_err(reading)?;
                file.write_all(&self.buf[..n]).map_err(writing)?;
                left -= n as u64;
            }
        }
        Ok(())
    }
    // ANCHOR_END: write_data

    /// Writes a sparse file's chunks where its map puts them and sets its size: what the map
    /// leaves out stays a hole, taking no disk space.
    fn sparse_data(
        &mut self,
        raw: &[u8],
        file: &mut File,
        data: &mut impl Read,
        map: &SparseMap,
    ) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        self.trace("write a sparse file's data, leaving holes", || {
            format!(
                "lseek + write for {} chunks, ftruncate({})",
                map.chunks.len(),
                map.size
            )
        });
        self.buf.resize(1 << 20, 0);
        for &(offset, length) in &map.chunks {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| entry_error(raw, format!("seeking: {e}")))?;
            let mut left = length;
            while left > 0 {
                let n = left.min(self.buf.len() as u64) as usize;
                data.read_exact(&mut self.buf[..n])
                    .map_err(|e| entry_error(raw, format!("reading its data: {e}")))?;
                file.write_all(&self.buf[..n]).map_err(|e| {
                    if crate::state::is_disk_full_io(&e) {
                        anyhow::Error::new(e).context(format!("entry {}: writing", show(raw)))
                    } else {
                        entry_error(raw, format!("writing: {e}"))
                    }
                })?;
                left -= n as u64;
            }
        }
        file.set_len(map.size)
            .map_err(|e| entry_error(raw, format!("setting its size: {e}")))
    }

    /// Owner, then mode, then xattrs, then times, on the open file. The order matters:
    /// chown(2) clears the setuid/setgid bits and file capabilities, so those are set after.
    fn set_meta_fd(&self, raw: &[u8], fd: BorrowedFd<'_>, meta: &Meta) -> Result<()> {
        if self.opts.preserve_owners {
            fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid)))
                .map_err(|e| entry_error(raw, format!("fchown: {}", e.desc())))?;
        }
        if self.needs_chmod(meta.mode) {
            fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
                .map_err(|e| entry_error(raw, format!("fchmod: {}", e.desc())))?;
        }
        for (name, value) in &meta.xattrs {
            beneath::fsetxattr(fd, name, value)
                .map_err(|e| entry_error(raw, format!("setting xattr {name:?}: {}", e.desc())))?;
        }
        futimens(fd, &meta.mtime, &meta.mtime)
            .map_err(|e| entry_error(raw, format!("futimens: {}", e.desc())))
    }

    /// The same for entries we cannot open (symlinks, devices, fifos): `*at` calls with
    /// AT_SYMLINK_NOFOLLOW on the name in the directory we hold.
    fn set_meta_at(
        &self,
        raw: &[u8],
        dir: &OwnedFd,
        name: &[u8],
        meta: &Meta,
        chmod: bool,
    ) -> Result<()> {
        let dir = dir.as_fd();
        if self.opts.preserve_owners {
            fchownat(
                dir,
                name,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| entry_error(raw, format!("fchownat: {}", e.desc())))?;
        }
        if chmod && self.needs_chmod(meta.mode) {
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(meta.mode & 0o7777),
                FchmodatFlags::NoFollowSymlink,
            )
            .map_err(|e| entry_error(raw, format!("fchmodat: {}", e.desc())))?;
        }
        for (key, value) in &meta.xattrs {
            beneath::lsetxattr(&beneath::proc_path(dir, name), key, value)
                .map_err(|e| entry_error(raw, format!("setting xattr {key:?}: {}", e.desc())))?;
        }
        utimensat(
            dir,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| entry_error(raw, format!("utimensat: {}", e.desc())))
    }

    /// Whether the mode given at creation may have been cut (by the umask, or by chown
    /// clearing setuid/setgid), so an explicit chmod is needed.
    fn needs_chmod(&self, mode: u32) -> bool {
        mode & 0o7000 != 0 || self.umask.is_none_or(|umask| mode & umask != 0)
    }

    fn directory(&mut self, raw: &[u8], clean: &[u8], meta: Meta) -> Result<()> {
        let (parent, name) = path::split(clean);
        let dir = self.parent(raw, parent, true)?;
        // Private until the end, when the real mode is applied: a 0555 directory must still
        // take its files, and a half-applied layer should not expose a world-writable one.
        let private = Mode::from_bits_truncate(0o700);
        self.trace("make a directory", || {
            format!("mkdirat(dirfd, {}, 0700)", show(name))
        });
        let mut opaque = false;
        let mut is_new = true;
        match mkdirat(dir.as_fd(), name, private) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = lstat_at(dir.as_fd(), name)
                    .map_err(|e| entry_error(raw, format!("fstatat: {}", e.desc())))?;
                if beneath::kind(&st) == SFlag::S_IFDIR {
                    // Both directories: keep it, replace its attributes (image-spec).
                    is_new = false;
                } else {
                    // A whiteout from this same layer, then the directory: the directory was
                    // deleted and made again, which overlayfs spells "opaque".
                    opaque = self.opts.whiteouts == Whiteouts::Overlay && is_whiteout_stat(&st);
                    self.replace_leaf(raw, &dir, name, |d, n| mkdirat(d, n, private))?;
                }
            }
            Err(e) => return Err(entry_error(raw, format!("mkdirat: {}", e.desc()))),
        }
        if opaque || !meta.xattrs.is_empty() {
            let fd = beneath::open_dir(dir.as_fd(), name, false, None)
                .map_err(|e| entry_error(raw, e.describe()))?;
            if opaque {
                set_opaque(raw, fd.as_fd())?;
            }
            for (key, value) in &meta.xattrs {
                beneath::fsetxattr(fd.as_fd(), key, value).map_err(|e| {
                    entry_error(raw, format!("setting xattr {key:?}: {}", e.desc()))
                })?;
            }
        }
        self.deferred.push(DeferredDir {
            path: clean.to_vec(),
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: meta.mtime,
        });
        if is_new {
            self.mark_fresh(clean.to_vec());
        } else {
            // An existing directory holds lower content: it is "touched", not fresh.
            self.mark_touched(clean);
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        raw: &[u8],
        clean: &[u8],
        dir: &OwnedFd,
        name: &[u8],
        target_raw: &[u8],
    ) -> Result<()> {
        let what = format!("hardlink target {}", show(target_raw));
        let target =
            path::clean(target_raw).map_err(|e| entry_error(raw, format!("{what}: {e}")))?;
        if target.is_empty() {
            return Err(entry_error(raw, format!("{what} is the layer root")));
        }
        if target == clean {
            return Err(entry_error(raw, "hardlinks to itself"));
        }
        let (target_parent, target_name) = path::split(&target);
        let target_dir = self.parent_dir(target_parent, false).map_err(|e| match e {
            WalkError::Missing(_) => {
                entry_error(raw, format!("{what} does not exist in this layer"))
            }
            e => entry_error(raw, format!("{what}: {}", e.describe())),
        })?;
        self.trace("create a hardlink, never following", || {
            format!(
                "linkat(dirfd, {}, dirfd, {}, 0)",
                show(target_name),
                show(name)
            )
        });
        // No AT_SYMLINK_FOLLOW: if the target is a symlink, the new name is a second link to
        // that symlink, not to whatever it points at.
        let link =
            |d: BorrowedFd<'_>| linkat(target_dir.as_fd(), target_name, d, name, AtFlags::empty());
        let linked = match link(dir.as_fd()) {
            Err(Errno::EEXIST) => {
                self.remove_existing(raw, dir, name)?;
                link(dir.as_fd())
            }
            other => other,
        };
        linked.map_err(|e| match e {
            Errno::ENOENT => entry_error(raw, format!("{what} does not exist in this layer")),
            Errno::EPERM => entry_error(raw, format!("{what} is a directory")),
            e => entry_error(raw, format!("linkat: {}", e.desc())),
        })
    }

    // ANCHOR: whiteout
    /// A whiteout entry, `.wh.NAME`, or the opaque marker `.wh..wh..opq`. A name must name
    /// one file (`.wh.`, `.wh..` and `.wh...` fail the layer); what happens to it depends on
    /// whether the layer is applied (the file is deleted) or kept for overlayfs (a 0/0
    /// character device is made in its place).
    fn whiteout(&mut self, raw: &[u8], parent: &[u8], name: &[u8]) -> Result<()> {
        if name == OPAQUE_MARKER.as_bytes() {
            return self.opaque(raw, parent);
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(entry_error(raw, "whiteout that names no file"));
        }
        match self.opts.whiteouts {
            // Literal archives never reach here: their `.wh.` names are plain files.
            Whiteouts::Apply | Whiteouts::Literal => self.delete_lower(raw, parent, target),
            Whiteouts::Overlay => self.overlay_whiteout(raw, parent, target),
        }
    }
    // ANCHOR_END: whiteout

    // ANCHOR: delete_lower
    /// Applies a whiteout: deletes `target` in `parent`, reached like any other path (so
    /// `link/.wh.x` fails when `link` is a symlink). Only what lower layers put there goes:
    /// an entry of this layer wins, and a directory this layer adds to loses only its lower
    /// content. Nothing to delete is no error.
    fn delete_lower(&mut self, raw: &[u8], parent: &[u8], target: &[u8]) -> Result<()> {
        let victim = path::join(parent, target);
        let dir = match self.parent_dir(parent, false) {
            Ok(dir) => dir,
            // Nothing there to delete.
            Err(WalkError::Missing(_)) => return Ok(()),
            Err(e) => return Err(entry_error(raw, e.describe())),
        };
        // ANCHOR: whiteout_apply
        if self.fresh.contains(&victim) {
            // This layer's own entry of that name wins: whiteouts hide lower layers
            // only (image-spec), whatever the order in the archive.
            return Ok(());
        }
        if self.touched.contains(&victim) {
            // A directory that this layer also adds to: remove only the lower content.
            return self.prune(raw, &victim);
        }
        self.trace("apply a whiteout: delete", || {
            format!("unlinkat(dirfd, {}) (recursively)", show(target))
        });
        self.dirs.clear();
        beneath::remove_all_at(dir.as_fd(), target)
            .map_err(|e| entry_error(raw, format!("deleting: {}", e.desc())))
        // ANCHOR_END: whiteout_apply
    }
    // ANCHOR_END: delete_lower

    // ANCHOR: overlay_whiteout
    /// Keeps a whiteout for overlayfs: a character device 0/0 named `target`, overlayfs's own
    /// form of a deletion, which only root can make (`CAP_MKNOD`). An entry of this layer
    /// with that name wins, as in `delete_lower`.
    fn overlay_whiteout(&mut self, raw: &[u8], parent: &[u8], target: &[u8]) -> Result<()> {
        if !self.opts.allow_devices {
            return Err(entry_error(
                raw,
                "an overlay whiteout is a character device 0/0, which only root can create",
            ));
        }
        let victim = path::join(parent, target);
        let dir = self.parent(raw, parent, true)?;
        if self.fresh.contains(&victim) {
            return Ok(());
        }
        self.trace("make an overlay whiteout", || {
            format!("mknodat(dirfd, {}, S_IFCHR, 0/0)", show(target))
        });
        let whiteout = |d: BorrowedFd<'_>, n: &[u8]| {
            mknodat(d, n, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        };
        self.replace_leaf(raw, &dir, target, whiteout)?;
        self.mark_touched(parent);
        Ok(())
    }
    // ANCHOR_END: overlay_whiteout

    // ANCHOR: opaque
    /// The opaque marker `.wh..wh..opq`: the directory hides everything lower layers put in
    /// it. Applied, that lower content is deleted; kept for overlayfs, the directory gets the
    /// opaque xattr.
    fn opaque(&mut self, raw: &[u8], dir_path: &[u8]) -> Result<()> {
        match self.opts.whiteouts {
            // Literal archives never reach here: their `.wh.` names are plain files.
            Whiteouts::Apply | Whiteouts::Literal => {
                // Reach it first, so a marker under a symlink is refused even when there is
                // nothing to delete.
                match self.parent_dir(dir_path, false) {
                    Ok(_) => {}
                    Err(WalkError::Missing(_)) => return Ok(()),
                    Err(e) => return Err(entry_error(raw, e.describe())),
                }
                if self.fresh.contains(dir_path) {
                    return Ok(());
                }
                self.prune(raw, dir_path)
            }
            Whiteouts::Overlay => {
                self.parent(raw, dir_path, true)?;
                let fd = beneath::open_dir(self.root, dir_path, false, None)
                    .map_err(|e| entry_error(raw, e.describe()))?;
                self.mark_touched(dir_path);
                self.trace("mark the directory opaque", || {
                    format!("fsetxattr(dirfd, \"{}\", \"y\")", opaque_xattr())
                });
                set_opaque(raw, fd.as_fd())
            }
        }
    }

    // ANCHOR_END: opaque

    // ANCHOR: prune
    /// Removes from `dir_path` whatever is not this layer's: the lower layers' content.
    fn prune(&mut self, raw: &[u8], dir_path: &[u8]) -> Result<()> {
        let fd = match beneath::open_dir(self.root, dir_path, false, None) {
            Ok(fd) => fd,
            Err(WalkError::Missing(_)) => return Ok(()),
            Err(e) => return Err(entry_error(raw, e.describe())),
        };
        self.trace("apply an opaque marker: delete lower content", || {
            format!("unlinkat(dirfd, ...) for each child of {}", show(dir_path))
        });
        self.dirs.clear();
        let names = beneath::list_dir(fd.as_fd())
            .map_err(|e| entry_error(raw, format!("listing: {}", e.desc())))?;
        for name in names {
            let child = path::join(dir_path, &name);
            if self.fresh.contains(&child) {
                continue;
            }
            if self.touched.contains(&child) {
                self.prune(raw, &child)?;
                continue;
            }
            beneath::remove_all_at(fd.as_fd(), &name)
                .map_err(|e| entry_error(raw, format!("deleting: {}", e.desc())))?;
        }
        Ok(())
    }
    // ANCHOR_END: prune

    /// The end pass: directory owners, modes and times, now that nothing more will be
    /// created inside them.
    fn finish(&mut self) -> Result<()> {
        if explain::enabled() && self.entries > u64::from(self.traced) {
            explain::note(&format!(
                "... and the same calls for the other entries ({} in this layer)",
                self.entries
            ));
        }
        for d in std::mem::take(&mut self.deferred) {
            // Re-resolve from the root, refusing symlinks: a later entry may have replaced
            // this directory with a symlink, and chmod-ing through it is CVE-2021-32760.
            let fd = match beneath::open_dir(self.root, &d.path, false, None) {
                Ok(fd) => fd,
                Err(WalkError::Io(p, e)) => {
                    return Err(entry_error(&p, format!("opening: {}", e.desc())));
                }
                // Replaced or removed by a later entry: its attributes no longer apply.
                Err(_) => continue,
            };
            let fail = |what: &str, e: Errno| entry_error(&d.path, format!("{what}: {}", e.desc()));
            if self.opts.preserve_owners {
                fchown(&fd, Some(uid(d.uid)), Some(gid(d.gid))).map_err(|e| fail("fchown", e))?;
            }
            fchmod(&fd, Mode::from_bits_truncate(d.mode & 0o7777))
                .map_err(|e| fail("fchmod", e))?;
            futimens(&fd, &d.mtime, &d.mtime).map_err(|e| fail("futimens", e))?;
        }
        Ok(())
    }
}

fn uid(id: u64) -> Uid {
    Uid::from_raw(id as u32)
}

fn gid(id: u64) -> Gid {
    Gid::from_raw(id as u32)
}

/// Whether a stat result is an overlayfs whiteout: a character device with device number 0/0.
pub(crate) fn is_whiteout_stat(st: &nix::sys::stat::FileStat) -> bool {
    beneath::kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

fn set_opaque(raw: &[u8], fd: BorrowedFd<'_>) -> Result<()> {
    beneath::fsetxattr(fd, opaque_xattr(), b"y").map_err(|e| {
        entry_error(
            raw,
            format!("setting {} (needs root): {}", opaque_xattr(), e.desc()),
        )
    })
}

fn read_extension(entry: &mut impl Read, raw: &[u8], limit: u64) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    // Read at most limit + 1 bytes: enough to tell "too big" without trusting the header.
    entry
        .take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| entry_error(raw, format!("reading an extension header: {e}")))?;
    if data.len() as u64 > limit {
        return Err(entry_error(
            raw,
            format!("extension header is over the limit of {limit} bytes"),
        ));
    }
    Ok(data)
}

/// The map of a sparse file, checked against the data stored (the entry's size less a 1.0 map
/// at its start); `None` for a file stored whole.
fn sparse_map(
    raw: &[u8],
    data: &mut impl Read,
    size: u64,
    sparse: Sparse,
) -> Result<Option<SparseMap>> {
    let (map, stored) = match sparse {
        Sparse::No => return Ok(None),
        Sparse::Map(map) => (map, size),
        Sparse::InData(real_size) => {
            let (chunks, consumed) = sparse::read_map_1_0(data).map_err(|e| entry_error(raw, e))?;
            let stored = size
                .checked_sub(consumed)
                .ok_or_else(|| entry_error(raw, "the sparse map is longer than the entry"))?;
            let map = SparseMap {
                chunks,
                size: real_size,
            };
            (map, stored)
        }
    };
    map.validate(stored).map_err(|e| entry_error(raw, e))?;
    Ok(Some(map))
}

/// Builds a member from its header and the extension headers before it. Precedence, as in GNU
/// tar and Go's archive/tar: pax records, then GNU long names, then the ustar fields.
fn member(
    header: &tar::Header,
    kind: EntryType,
    header_name: Vec<u8>,
    pending: Pending,
) -> Result<Member> {
    let bad = |what: &str, e: std::io::Error| entry_error(&header_name, format!("bad {what}: {e}"));
    let mut raw = pending
        .long_name
        .map(|mut n| {
            while n.last() == Some(&0) {
                n.pop();
            }
            n
        })
        .unwrap_or_else(|| header_name.clone());
    let mut link = pending
        .long_link
        .map(|mut n| {
            while n.last() == Some(&0) {
                n.pop();
            }
            n
        })
        .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
    let mut meta = Meta {
        mode: header.mode().map_err(|e| bad("mode", e))?,
        uid: header.uid().map_err(|e| bad("uid", e))?,
        gid: header.gid().map_err(|e| bad("gid", e))?,
        mtime: timespec(header.mtime().map_err(|e| bad("mtime", e))? as i64, 0),
        xattrs: Vec::new(),
    };
    let mut size = header.entry_size().map_err(|e| bad("size", e))?;
    let mut sparse = PaxSparse::default();
    let device = (
        header.device_major().ok().flatten().unwrap_or(0),
        header.device_minor().ok().flatten().unwrap_or(0),
    );
    if let Some(data) = &pending.pax {
        let records = pax::parse(data).map_err(|e| entry_error(&raw, e))?;
        for (key, value) in records {
            let text = || String::from_utf8_lossy(value).into_owned();
            let number = |what: &str| {
                text()
                    .parse::<u64>()
                    .map_err(|_| entry_error(&raw, format!("bad pax {what} {:?}", text())))
            };
            match key {
                b"path" => raw = value.to_vec(),
                b"linkpath" => link = Some(value.to_vec()),
                b"uid" => meta.uid = number("uid")?,
                b"gid" => meta.gid = number("gid")?,
                // Replaces the header's size (which cannot hold 8 GiB or more), and so
                // decides where the next header starts.
                b"size" => size = number("size")?,
                b"mtime" => {
                    meta.mtime = parse_pax_time(&text())
                        .ok_or_else(|| entry_error(&raw, format!("bad pax mtime {:?}", text())))?
                }
                key if key.starts_with(b"SCHILY.xattr.") => {
                    let name = String::from_utf8_lossy(&key[b"SCHILY.xattr.".len()..]).into_owned();
                    // overlayfs reads its own metadata from these names in a lower layer:
                    // `redirect` and `metacopy` make it look up *other* paths. An image must
                    // never set them; whiteouts come only through `.wh.` entries.
                    if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                        return Err(entry_error(
                            &raw,
                            format!("xattr {name:?} is reserved for overlayfs"),
                        ));
                    }
                    meta.xattrs.push((name, value.to_vec()));
                }
                key if sparse.take(key, value) => {}
                _ => {}
            }
        }
    }
    let layout = sparse.kind().map_err(|e| entry_error(&raw, e))?;
    if !matches!(layout, PaxSparseKind::No)
        && let Some(name) = sparse.name.take()
    {
        // The real name of a PAX sparse file (1.0 keeps a placeholder in `path`).
        raw = name;
    }
    let sparse = match layout {
        PaxSparseKind::No => Sparse::No,
        PaxSparseKind::Map(map) => Sparse::Map(map),
        PaxSparseKind::InData(real_size) => Sparse::InData(real_size),
    };
    Ok(Member {
        raw,
        kind,
        link,
        size,
        device,
        meta,
        sparse,
    })
}

/// A pax time: decimal seconds with an optional fraction, possibly negative.
fn parse_pax_time(text: &str) -> Option<TimeSpec> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, digit) in frac.bytes().take(9).enumerate() {
        if !digit.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    if text.starts_with('-') && nanos > 0 {
        return Some(timespec(secs - 1, 1_000_000_000 - nanos));
    }
    Some(timespec(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_their_fraction() {
        assert_eq!(
            parse_pax_time("1700000000"),
            Some(timespec(1_700_000_000, 0))
        );
        assert_eq!(
            parse_pax_time("1700000000.5"),
            Some(timespec(1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time("-1.25"), Some(timespec(-2, 750_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }

    #[test]
    fn the_default_limits_are_the_documented_ones() {
        let opts = ApplyOptions::default();
        assert_eq!(opts.max_entries, 1_000_000);
        assert_eq!(opts.whiteouts, Whiteouts::Apply);
        assert_eq!(ApplyOptions::overlay_lower().whiteouts, Whiteouts::Overlay);
        assert_eq!(MAX_PAX_BYTES, 1024 * 1024);
    }
}
