# Shared by scripts/quickstart and scripts/test: install what minidock needs on a fresh
# Debian/Ubuntu machine, as root. Sourced, not run.

# require_root: every script here creates namespaces, mounts and cgroups.
require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: run as root (namespaces, mounts and cgroups need it)" >&2
    exit 1
  fi
}

# apt_install PKG...: installs the packages that are missing, running apt-get update once.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing with apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# require_cargo: the Rust toolchain (rustup's; Debian's cargo is too old for edition 2024).
require_cargo() {
  if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "$0: cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
    exit 1
  fi
}

# build_release: the release binaries, with minidock-shim linked statically (+crt-static), as
# containerd's shims are static binaries: the shim that stays with each container then maps no
# shared libc, ld.so or libgcc_s, and stays near 1.4 MiB RSS instead of 2.2 MiB. It is linked
# last, because `cargo build` links it again without the flag. Arguments go to cargo:
# `build_release --quiet` hides its progress.
build_release() {
  cargo build --release "$@"
  cargo rustc --release "$@" --bin minidock-shim -- -C target-feature=+crt-static
}

# The Debian packages minidock, its tests and its workshop use.
# uidmap (the setuid newuidmap/newgidmap), passwd and util-linux (useradd and setpriv, which
# the rootless tests use to become an unprivileged user), slirp4netns and passt: rootless mode.
# strace: the workshop's checker sees with it which program made a lesson's system calls.
RUNTIME_PACKAGES=(busybox-static git iproute2 iptables nftables kmod ca-certificates uidmap passwd util-linux slirp4netns passt strace)
TEST_PACKAGES=(runc crun skopeo umoci docker-registry docker.io apache2-utils openssl hyperfine cpio procps python3 python3-venv docker-compose tar gzip bzip2 xz-utils zstd chromium)

# The Docker SDK for Python (`docker` on PyPI), in a venv of Debian's python3 that the daemon's
# client tests use (tests/daemon_clients.rs reads MINIDOCK_PYTHON_SDK, else this path).
SDK_VENV="${SDK_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/python-sdk}"

# install_python_sdk: makes $SDK_VENV with the `docker` package, once.
install_python_sdk() {
  if "$SDK_VENV/bin/python" -c 'import docker' >/dev/null 2>&1; then return 0; fi
  echo "== installing the Docker SDK for Python into $SDK_VENV"
  /usr/bin/python3 -m venv "$SDK_VENV"
  "$SDK_VENV/bin/pip" install --quiet --disable-pip-version-check docker
}
