//! workshop: rebuild each mechanism yourself; the checker verifies what the kernel did.
use clap::{Parser, Subcommand};
use minidock::workshop::{self, Variant};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "workshop", about = "The minidock workshop", version)]
struct Cli {
    /// The lessons directory (default: $MINIDOCK_LESSONS, else the repository's lessons/).
    #[arg(long, global = true, value_name = "DIR")]
    lessons: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the lessons.
    List,
    /// Build your code for lesson N, run it, and check what the kernel shows.
    Check {
        lesson: u32,
        /// Check the reference solution instead of your starter.
        #[arg(long)]
        solution: bool,
        /// Check one of the lesson's known-wrong answers instead (the file name under
        /// lessons/NN/wrong/, without .rs).
        #[arg(long, value_name = "NAME", conflicts_with = "solution")]
        wrong: Option<String>,
    },
    /// Show hint STEP of lesson N (default 1): the idea, then the call, then its flags and
    /// arguments, then the order.
    Hint {
        lesson: u32,
        /// Which step (1 is the gentlest).
        step: Option<usize>,
        /// Show every step at once.
        #[arg(long, conflicts_with = "step")]
        all: bool,
    },
    /// Print the reference solution of lesson N.
    Solution { lesson: u32 },
    /// For every lesson: the starter must fail its check and the solution must pass (CI).
    Verify,
    /// mkdir(2) of PATH with i386's system call numbers (`int 0x80`), which lesson 17's check
    /// runs under the learner's filter; exits with the call's errno (0: made).
    #[command(name = "i386-mkdir", hide = true)]
    I386Mkdir { path: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.lessons.unwrap_or_else(workshop::lessons_dir);
    minidock::cli::run_main("workshop", || match cli.command {
        Command::List => {
            for lesson in workshop::load_manifest(&dir)? {
                println!(
                    "{:>2}  {:<58} book: {}   edit: lessons/{}",
                    lesson.id, lesson.title, lesson.chapter, lesson.starter
                );
            }
            Ok(0)
        }
        Command::Check {
            lesson,
            solution,
            wrong,
        } => {
            let lesson = workshop::find_lesson(&dir, lesson)?;
            let variant = match wrong {
                Some(name) => Variant::Wrong(workshop::wrong_answer_index(&lesson, &name)?),
                None if solution => Variant::Solution,
                None => Variant::Learner,
            };
            let report = workshop::check(&dir, &lesson, variant)?;
            print!("{}", report.render());
            Ok(if report.passed() { 0 } else { 1 })
        }
        Command::Hint { lesson, step, all } => {
            let lesson = workshop::find_lesson(&dir, lesson)?;
            let steps = if all {
                1..=lesson.hints.len()
            } else {
                let step = step.unwrap_or(1);
                step..=step
            };
            for step in steps {
                println!("{}", workshop::hint(&lesson, step)?);
            }
            Ok(0)
        }
        Command::Solution { lesson } => {
            let lesson = workshop::find_lesson(&dir, lesson)?;
            let path = dir.join(&lesson.solution);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            print!("{text}");
            Ok(0)
        }
        Command::I386Mkdir { path } => {
            let errno = workshop::mkdir_i386(&path)?;
            Ok(u8::try_from(errno).unwrap_or(u8::MAX))
        }
        Command::Verify => {
            for line in workshop::verify(&dir)? {
                println!("{line}");
            }
            Ok(0)
        }
    })
}
