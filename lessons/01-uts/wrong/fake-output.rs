//! Lesson 01, a known-wrong answer: print what the checker's command would print, run nothing.
//!
//! The hostname and a namespace inode are only text on stdout; the checker reads the
//! command's UTS namespace and its hostname from the host. `workshop verify` proves the check
//! fails it.

fn main() {
    let hostname = std::env::args().nth(1).unwrap_or_default();
    println!("{hostname}");
    println!("uts:[4026532999]");
}
