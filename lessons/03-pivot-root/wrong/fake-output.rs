//! Lesson 03, a known-wrong answer: print what the checker's command would print, run nothing.
//!
//! The marker, the hidden host file and the mount list are only text on stdout; the checker
//! looks at the command's mount namespace from the host, and a command that never gets there
//! fails. `workshop verify` proves the check fails it.

fn main() {
    println!("inside the rootfs");
    println!("host-hidden");
    println!("/ /proc ");
}
