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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    // ANCHOR_END: writer

    // ANCHOR: writer_write
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
    // ANCHOR_END: writer_write
}

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
    /// Prefix each line with its time (RFC 3339 with nine fraction digits, Docker's
    /// `RFC3339NanoFixed`).
    pub timestamps: bool,
    /// Only entries written at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries written at or before this time; `follow` stops once it is past.
    pub until: Option<SystemTime>,
    /// Docker's `--details`: each line after the log's extra attributes and a space. minidock
    /// records no attributes (no `--log-opt labels`), so it is the space alone, as in Docker.
    pub details: bool,
}

// ANCHOR: log_time
/// A `--since`/`--until` value as Docker reads it (moby `timetypes.GetTimestamp`): a Go
/// duration before `now` (`10m`, `1h30m`, `1.5h`), an RFC 3339 time (`2024-05-01T12:00:00Z`,
/// with a fraction or an offset; without a zone, a date or a time is read as UTC), or Unix
/// seconds (`1714564800`, `1714564800.5`). Errors as Docker's daemon words them.
pub fn parse_log_time(flag: &str, value: &str, now: SystemTime) -> Result<SystemTime> {
    let fail = || {
        anyhow::Error::from(crate::cli::Exit::new(
            super::REQUEST_FAILED,
            format!(
                "invalid value for {flag:?}: failed to parse value as time or duration: {value:?}"
            ),
        ))
    };
    if value != "0"
        && let Some(ago) = parse_go_duration(value)
    {
        return Ok(if ago >= 0.0 {
            now.checked_sub(Duration::from_secs_f64(ago))
                .unwrap_or(UNIX_EPOCH)
        } else {
            now + Duration::from_secs_f64(-ago)
        });
    }
    if value.contains('-') || value.contains('T') {
        let mut text = value.to_owned();
        if text.len() == 10 {
            text.push_str("T00:00:00");
        }
        let time_part = text.split_once('T').map_or("", |(_, t)| t);
        match time_part
            .split(['Z', 'z', '+', '-'])
            .next()
            .unwrap_or("")
            .matches(':')
            .count()
        {
            0 if !time_part.is_empty() && text.is_char_boundary(13) => {
                text.insert_str(13, ":00:00")
            }
            1 if text.is_char_boundary(16) => text.insert_str(16, ":00"),
            _ => {}
        }
        let zone = text.get(19..).unwrap_or("");
        if !(text.ends_with(['Z', 'z']) || zone.contains(['+', '-'])) {
            text.push('Z');
        }
        return crate::state::parse_rfc3339(&text).ok_or_else(fail);
    }
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    let secs: u64 = secs.parse().map_err(|_| fail())?;
    let digits = &nanos[..nanos.len().min(9)];
    let nanos: u32 = digits.parse().map_err(|_| fail())?;
    let nanos = nanos * 10u32.pow(9 - digits.len() as u32);
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Go's `time.ParseDuration` in seconds: an optional sign, then numbers with units (`ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`), such as `1h30m` or `1.5s`. `None` when it is not one.
pub fn parse_go_duration(text: &str) -> Option<f64> {
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut any = false;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
        any = true;
    }
    any.then_some(sign * total)
}

/// Docker's `RFC3339NanoFixed`: always nine fraction digits.
fn fixed_nano(time: &str) -> String {
    let Some(parsed) = crate::state::parse_rfc3339(time) else {
        return time.to_owned();
    };
    let whole = UNIX_EPOCH
        + Duration::from_secs(
            parsed
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
        );
    let seconds = crate::state::rfc3339(whole);
    let nanos = parsed
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{}.{nanos:09}Z", seconds.trim_end_matches('Z'))
}

/// Whether an entry's time is inside `--since`/`--until`.
fn in_window(entry: &Entry, options: &LogsOptions) -> bool {
    let Some(time) = crate::state::parse_rfc3339(&entry.time) else {
        return true;
    };
    options.since.is_none_or(|since| time >= since)
        && options.until.is_none_or(|until| time <= until)
}
// ANCHOR_END: log_time

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

/// Where [`logs_to`] puts each entry's text (after its timestamp and `--details` prefix):
/// called with `true` for a stderr entry. An error ends the copy (the reader went away).
pub type Sink<'a> = dyn FnMut(bool, &[u8]) -> Result<()> + 'a;

fn print(entries: &[Entry], options: &LogsOptions, sink: &mut Sink) -> Result<()> {
    for entry in entries {
        if !in_window(entry, options) {
            continue;
        }
        let mut line = Vec::new();
        if options.timestamps {
            write!(line, "{} ", fixed_nano(&entry.time))?;
        }
        if options.details {
            line.push(b' ');
        }
        line.extend_from_slice(entry.log.as_bytes());
        sink(entry.stream == "stderr", &line)?;
    }
    Ok(())
}

// ANCHOR: logs
/// `logs`: prints the log of a container, its stdout entries to stdout and its stderr entries
/// to stderr. With `follow`, keeps printing what the container writes until it stops.
pub fn logs(paths: &super::Paths, name_or_id: &str, options: &LogsOptions) -> Result<()> {
    let state = paths.resolve(name_or_id)?;
    logs_to(paths, &state, options, &mut |stderr, bytes| {
        if stderr {
            let mut err = std::io::stderr().lock();
            err.write_all(bytes)?;
            err.flush()?;
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
        }
        Ok(())
    })
}

/// [`logs`] of container `state`, each entry given to `sink` (the Engine API's `logs`
/// endpoint frames them for its client).
pub fn logs_to(
    paths: &super::Paths,
    state: &super::ContainerState,
    options: &LogsOptions,
    sink: &mut Sink,
) -> Result<()> {
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
    print(&entries, options, sink)?;
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
        print(&entries, options, sink)?;
        let past_until = options.until.is_some_and(|until| SystemTime::now() > until);
        if !running || past_until {
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
    fn since_and_until_read_durations_times_and_unix_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_564_800);
        let at = |v: &str| parse_log_time("since", v, now).unwrap();
        assert_eq!(at("10m"), now - Duration::from_secs(600));
        assert_eq!(at("1h30m"), now - Duration::from_secs(5400));
        assert_eq!(
            at("1714564000"),
            UNIX_EPOCH + Duration::from_secs(1_714_564_000)
        );
        assert_eq!(
            at("1714564000.5"),
            UNIX_EPOCH + Duration::new(1_714_564_000, 500_000_000)
        );
        assert_eq!(at("2024-05-01T12:00:00Z"), now);
        assert_eq!(at("2024-05-01T14:00:00+02:00"), now);
        assert_eq!(at("2024-05-01T12:00"), now);
        assert_eq!(at("2024-05-01"), now - Duration::from_secs(12 * 3600));
        assert_eq!(at("0"), UNIX_EPOCH);
        for bad in [
            "ab-T1",
            "2024-5-1",
            "T",
            "-",
            "1.x",
            "2024-05-01T12:00:00+0",
        ] {
            assert!(parse_log_time("since", bad, now).is_err(), "{bad}");
        }
        let err = parse_log_time("since", "bogus", now)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid value for \"since\": failed to parse value as time or duration: \"bogus\""
        );
        assert_eq!(
            fixed_nano("2024-05-01T12:00:00.5Z"),
            "2024-05-01T12:00:00.500000000Z"
        );
        assert_eq!(
            fixed_nano("2024-05-01T12:00:00Z"),
            "2024-05-01T12:00:00.000000000Z"
        );
    }

    #[test]
    fn a_line_being_written_waits_for_its_newline() {
        let (entries, used) =
            parse(b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"lo");
        assert_eq!(entries.len(), 1);
        assert_eq!(used, 43);
    }
}
