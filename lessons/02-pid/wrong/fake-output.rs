//! Lesson 02, a known-wrong answer: print what the checker's command would print, run nothing.
//!
//! PID 1 and a namespace inode are only text on stdout; the checker reads the command's pid
//! in its own namespace (NSpid) and its /proc mount from the host. `workshop verify` proves
//! the check fails it.

fn main() {
    println!("1");
    println!("2");
    println!("pid:[4026532999]");
}
