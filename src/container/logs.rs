//! The container log, in Docker's `json-file` format: one JSON object per line of output,
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2024-05-01T12:34:56.123456789Z"}
//! ```
//!
//! The supervisor appends to it as the container writes; `minidock logs` reads it, from any
//! later process, while the container runs or after it is gone. One object per *line* (not per
//! read(2)) keeps `--tail N` meaningful; a line longer than 16 KiB is cut into several
//! entries, as Docker does, so one endless line cannot grow the supervisor's memory.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Docker's limit on one log entry before a line is split.
const MAX_LINE: usize = 16 * 1024;

/// Which of the container's outputs a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

// ANCHOR: writer
/// Appends a container's output to its log, a line at a time.
pub struct LogWriter {
    file: File,
    /// The unfinished last line of each stream.
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .with_context(|| format!("opening log {}", path.display()))?;
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Takes a chunk the container wrote; every complete line becomes one entry.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) -> Result<()> {
        let slot = stream as usize;
        self.partial[slot].extend_from_slice(bytes);
        let mut out = Vec::new();
        let buffer = std::mem::take(&mut self.partial[slot]);
        let mut rest: &[u8] = &buffer;
        loop {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) if end < MAX_LINE => {
                    encode(&mut out, stream, &rest[..=end])?;
                    rest = &rest[end + 1..];
                }
                _ if rest.len() >= MAX_LINE => {
                    encode(&mut out, stream, &rest[..MAX_LINE])?;
                    rest = &rest[MAX_LINE..];
                }
                _ => break,
            }
        }
        self.partial[slot] = rest.to_vec();
        // One write(2) per chunk, on an O_APPEND file: a reader sees whole lines.
        self.file.write_all(&out).context("writing the log")
    }

    /// At the end of a stream: the last line, even without its newline.
    pub fn finish(&mut self, stream: Stream) -> Result<()> {
        let slot = stream as usize;
        if self.partial[slot].is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        encode(&mut out, stream, &std::mem::take(&mut self.partial[slot]))?;
        self.file.write_all(&out).context("writing the log")
    }
}
// ANCHOR_END: writer

fn encode(out: &mut Vec<u8>, stream: Stream, line: &[u8]) -> Result<()> {
    let entry = Entry {
        // JSON strings are text: bytes that are not UTF-8 become U+FFFD, as in Docker.
        log: String::from_utf8_lossy(line).into_owned(),
        stream: stream.name().to_owned(),
        time: crate::state::rfc3339(std::time::SystemTime::now()),
    };
    serde_json::to_writer(&mut *out, &entry)?;
    out.push(b'\n');
    Ok(())
}

/// `logs`' options.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogsOptions {
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Prefix each line with its time.
    pub timestamps: bool,
}

/// Parses the complete lines of `text`; returns the entries and how many bytes they used (a
/// line being written right now, without its newline yet, is left for the next read).
fn parse(text: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut used = 0;
    while let Some(end) = text[used..].iter().position(|&b| b == b'\n') {
        let line = &text[used..used + end];
        used += end + 1;
        if let Ok(entry) = serde_json::from_slice::<Entry>(line) {
            entries.push(entry);
        }
    }
    (entries, used)
}

fn print(entries: &[Entry], options: &LogsOptions) -> Result<()> {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in entries {
        let sink: &mut dyn Write = if entry.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if options.timestamps {
            write!(sink, "{} ", entry.time)?;
        }
        sink.write_all(entry.log.as_bytes())?;
    }
    out.flush()?;
    err.flush()?;
    Ok(())
}

// ANCHOR: logs
/// `logs`: prints the log of a container, its stdout entries to stdout and its stderr entries
/// to stderr. With `follow`, keeps printing what the container writes until it stops.
pub fn logs(paths: &super::Paths, name_or_id: &str, options: &LogsOptions) -> Result<()> {
    let state = paths.resolve(name_or_id)?;
    let path = paths.dir(&state.id).join("log");
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !options.follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not started yet: wait for the supervisor to create it.
            File::options()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?
        }
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut pending = Vec::new();
    file.read_to_end(&mut pending)
        .with_context(|| format!("reading {}", path.display()))?;
    let (mut entries, used) = parse(&pending);
    pending.drain(..used);
    if let Some(tail) = options.tail {
        let skip = entries.len().saturating_sub(tail);
        entries.drain(..skip);
    }
    print(&entries, options)?;
    if !options.follow {
        return Ok(());
    }
    let mut offset = file.stream_position()?;
    loop {
        // Decide whether it is over *before* reading: whatever was written before the
        // container stopped is then read below, and nothing is lost at the end.
        let running = match super::ContainerState::load(paths, &state.id) {
            Ok(Some(now)) => now.observe() == super::Status::Running,
            _ => false,
        };
        file.seek(SeekFrom::Start(offset))?;
        let read = file.read_to_end(&mut pending)?;
        offset += read as u64;
        let (entries, used) = parse(&pending);
        pending.drain(..used);
        print(&entries, options)?;
        if !running {
            return Ok(());
        }
        if read == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
// ANCHOR_END: logs

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_becomes_one_entry_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut writer = LogWriter::open(&path).unwrap();
        writer.write(Stream::Stdout, b"hel").unwrap();
        writer.write(Stream::Stderr, b"oops\n").unwrap();
        writer.write(Stream::Stdout, b"lo\nwor").unwrap();
        writer
            .write(Stream::Stdout, &vec![b'x'; MAX_LINE + 1])
            .unwrap();
        writer.finish(Stream::Stdout).unwrap();
        writer.finish(Stream::Stderr).unwrap();
        let text = std::fs::read(&path).unwrap();
        let (entries, used) = parse(&text);
        assert_eq!(used, text.len());
        let logs: Vec<(&str, usize)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.log.len()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stderr", 5),
                ("stdout", 6),
                ("stdout", MAX_LINE),
                ("stdout", 4)
            ]
        );
        assert_eq!(entries[1].log, "hello\n");
        assert!(entries[0].time.ends_with('Z'));
    }

    #[test]
    fn a_line_being_written_waits_for_its_newline() {
        let (entries, used) =
            parse(b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"lo");
        assert_eq!(entries.len(), 1);
        assert_eq!(used, 43);
    }
}
