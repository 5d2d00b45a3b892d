//! Git build contexts, as Docker's classic builder takes them (the docker CLI's
//! `urlutil.IsGitURL` and moby's `builder/remotecontext/git`): `https://host/repo.git#ref:dir`,
//! `git://host/repo#ref:dir`, `git@host:repo#ref:dir` and `github.com/owner/repo`, cloned with
//! the `git` binary (`init`, `remote add origin`, `fetch --depth 1 origin -- REF` where the
//! server allows a shallow fetch, `checkout`), then the fragment's directory is the context.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Whether a build's CONTEXT argument names a git repository: an http(s) URL whose text
/// ends with `.git` (and an optional `#fragment`), or one starting with `git://`,
/// `github.com/` or `git@` (the docker CLI's `urlutil.IsGitURL`, its `.` matching any
/// character as in Go's regex).
pub fn is_git_url(context: &str) -> bool {
    let http = context.starts_with("http://") || context.starts_with("https://");
    // The regex `.git(?:#.+)?$` without compiling one: a character other than a newline,
    // then `git`, at the end or before a `#` and a fragment of one line.
    let ends_git = |s: &str| {
        s.strip_suffix("git")
            .and_then(|rest| rest.chars().last())
            .is_some_and(|c| c != '\n')
    };
    let git_suffix = ends_git(context)
        || context.match_indices('#').any(|(i, _)| {
            let fragment = &context[i + 1..];
            ends_git(&context[..i]) && !fragment.is_empty() && !fragment.contains('\n')
        });
    (http && git_suffix)
        || ["git://", "github.com/", "git@"]
            .iter()
            .any(|p| context.starts_with(p))
}

/// A git context's parts: the remote to fetch, the ref (default `master`) and the
/// subdirectory (empty: the repository's root).
#[derive(Debug, PartialEq, Eq)]
pub struct GitRemote {
    pub remote: String,
    pub git_ref: String,
    pub subdir: String,
}

// ANCHOR: git_remote
/// Splits a git context as moby's `parseRemoteURL`: `github.com/…` gets `https://`, the
/// fragment `REF:DIR` gives the ref and directory. Errors: a ref starting with `-`
/// (`invalid refspec: -x`).
pub fn parse_remote(url: &str) -> Result<GitRemote> {
    let url = if ["http://", "https://", "git://", "git@"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        url.to_owned()
    } else {
        format!("https://{url}")
    };
    let (remote, fragment) = url.split_once('#').unwrap_or((&url, ""));
    let (git_ref, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let git_ref = if git_ref.is_empty() {
        "master"
    } else {
        git_ref
    };
    if git_ref.starts_with('-') {
        bail!("invalid refspec: {git_ref}");
    }
    Ok(GitRemote {
        remote: remote.to_owned(),
        git_ref: git_ref.to_owned(),
        subdir: subdir.to_owned(),
    })
}
// ANCHOR_END: git_remote

// ANCHOR: git_clone
/// Clones `remote` into `root` (an empty directory) as moby's `cloneGitRepo`, and returns
/// the context directory: `root`, or its subdirectory, resolved inside it. Errors (moby's
/// words): a failed fetch (`error fetching: OUTPUT:
/// exit status N`), a ref that cannot be checked out, a subdirectory that is not one.
pub fn clone(remote: &GitRemote, root: &Path) -> Result<PathBuf> {
    git(root, &["init"]).context("failed to init repo")?;
    git(root, &["remote", "add", "origin", &remote.remote]).context("failed add origin repo")?;
    let mut fetch = vec!["fetch"];
    if supports_shallow(&remote.remote) {
        fetch.extend(["--depth", "1"]);
    }
    fetch.extend(["origin", "--", &remote.git_ref]);
    git(root, &fetch).map_err(|e| anyhow::anyhow!("error fetching: {e}"))?;
    if let Err(e) = git(root, &["checkout", &remote.git_ref]) {
        git(root, &["checkout", "FETCH_HEAD"])
            .map_err(|_| anyhow::anyhow!("error checking out {}: {e}", remote.git_ref))?;
    }
    let submodules = ["submodule", "update", "--init", "--recursive", "--depth=1"];
    git(root, &submodules).map_err(|e| anyhow::anyhow!("error initializing submodules: {e}"))?;
    if remote.subdir.is_empty() {
        return Ok(root.to_path_buf());
    }
    subdir_in(root, &remote.subdir)
}
// ANCHOR_END: git_clone

/// The context directory `subdir` of the checkout at `root`, symlinks resolved inside it.
/// Errors as moby's `checkoutGit`: a path whose `..` leave `root`, a missing path, a file.
fn subdir_in(root: &Path, subdir: &str) -> Result<PathBuf> {
    let mut joined: Vec<&str> = Vec::new();
    for part in root
        .to_str()
        .unwrap_or_default()
        .split('/')
        .chain(subdir.split('/'))
    {
        match part {
            "" | "." => {}
            ".." => {
                joined.pop();
            }
            p => joined.push(p),
        }
    }
    let joined = format!("/{}", joined.join("/"));
    if !Path::new(&joined).starts_with(root) {
        bail!(
            "error setting git context, {subdir:?} not within git root: evalSymlinksInScope: \
             {joined} is not in {}",
            root.display()
        );
    }
    let dir = crate::build::copy::resolve_in(root, subdir)?;
    let meta = std::fs::metadata(&dir)
        .map_err(|_| anyhow::anyhow!("stat {}: no such file or directory", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "error setting git context, not a directory: {}",
            dir.display()
        );
    }
    Ok(dir)
}

/// `git ARGS` run in `dir`; an error is its combined output and exit status, as Go's
/// `CombinedOutput` error reads (`OUTPUT: exit status 128`).
fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("running git")?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(code) => bail!("{text}: exit status {code}"),
        None => bail!("{text}: {}", out.status),
    }
}

/// Whether a shallow fetch can be asked of `remote`: always for a non-HTTP remote; over
/// HTTP only from a smart server, whose `info/refs?service=git-upload-pack` answers 200 with
/// the type `application/x-git-upload-pack-advertisement` (moby's `supportsShallowClone`).
fn supports_shallow(remote: &str) -> bool {
    if !(remote.starts_with("http://") || remote.starts_with("https://")) {
        return true;
    }
    let url = format!("{remote}/info/refs?service=git-upload-pack");
    let Ok(response) = ureq::get(&url).call() else {
        return false;
    };
    response.status() == 200
        && response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("application/x-git-upload-pack-advertisement")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_as_the_docker_cli_tells_them() {
        for yes in [
            "https://example.com/repo.git",
            "http://example.com/repo.git#main:dir",
            "git://example.com/repo",
            "git@example.com:owner/repo.git",
            "github.com/owner/repo",
            // Go's unescaped `.` matches any character.
            "https://example.com/repoxgit",
            "https://example.com/a#b.git",
            "https://example.com/a.git#x#y",
        ] {
            assert!(is_git_url(yes), "{yes}");
        }
        for no in [
            "https://example.com/context.tar.gz",
            "https://example.com/repo.git#",
            "https://example.com/repo.git#a\nb",
            "git",
            "file:///srv/repo.git",
            "/srv/repo.git",
            "-",
        ] {
            assert!(!is_git_url(no), "{no}");
        }
    }

    #[test]
    fn fragments_give_the_ref_and_directory() {
        let r = parse_remote("git://h/repo.git#v1:sub/dir").unwrap();
        assert_eq!(
            r,
            GitRemote {
                remote: "git://h/repo.git".into(),
                git_ref: "v1".into(),
                subdir: "sub/dir".into()
            }
        );
        let r = parse_remote("github.com/o/r").unwrap();
        assert_eq!(
            (r.remote.as_str(), r.git_ref.as_str()),
            ("https://github.com/o/r", "master")
        );
        let r = parse_remote("git@h:o/r.git#:docs").unwrap();
        assert_eq!((r.git_ref.as_str(), r.subdir.as_str()), ("master", "docs"));
        let e = parse_remote("git://h/r#--upload-pack=x").unwrap_err();
        assert_eq!(e.to_string(), "invalid refspec: --upload-pack=x");
    }
}
