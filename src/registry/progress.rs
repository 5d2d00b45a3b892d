//! What a pull or push shows while it works, as Docker shows it: on a terminal, one live bar
//! per layer (bytes done and total, rate); in a pipe or a log, one plain line per layer when
//! it is done, so logs stay readable.

use std::io::{self, IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The output of one pull or push. Shared by the layer threads.
pub struct Progress {
    bars: Option<MultiProgress>,
    quiet: bool,
    /// Instead of stdout: each line, with the layer's ID for a layer's (the Engine API sends
    /// them as Docker's progress JSON messages).
    sink: Option<Box<LineSink>>,
    /// Serialises the plain lines of parallel layers.
    lines: Mutex<()>,
}

/// Where a [`Progress`] made by [`Progress::to_sink`] sends its lines: the text (a status),
/// and the layer's short ID for a layer's line.
pub type LineSink = dyn Fn(&str, Option<&str>) + Send + Sync;

impl Progress {
    /// No bars and nothing on stdout: every line goes to `sink`.
    pub fn to_sink(sink: Box<LineSink>) -> Progress {
        Progress {
            bars: None,
            quiet: false,
            sink: Some(sink),
            lines: Mutex::new(()),
        }
    }

    /// Bars when stdout is a terminal, plain lines otherwise; nothing but the final line with
    /// `quiet` (`pull -q`).
    pub fn new(quiet: bool) -> Progress {
        let bars = (!quiet && io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(10)));
        Progress {
            bars,
            quiet,
            sink: None,
            lines: Mutex::new(()),
        }
    }

    /// A line that is not about one layer (`latest: Pulling from library/busybox`).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if let Some(sink) = &self.sink {
            sink(text, None);
            return;
        }
        let _guard = self.lines.lock().expect("progress lines");
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => {
                let mut out = io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A layer's progress: `id` is the 12-digit short digest, `verb` what is done to it
    /// ("Downloading", "Pushing"), `total` its size in bytes.
    pub fn layer(&self, id: &str, verb: &str, total: u64) -> LayerProgress<'_> {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<11} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("a valid progress template")
                .progress_chars("=> "),
            );
            bar.set_prefix(id.to_owned());
            bar.set_message(verb.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        LayerProgress {
            progress: self,
            id: id.to_owned(),
            bar,
        }
    }
}

/// One layer's bar (or plain line).
pub struct LayerProgress<'a> {
    progress: &'a Progress,
    id: String,
    bar: Option<ProgressBar>,
}

impl LayerProgress<'_> {
    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// A new phase of the layer's work ("Extracting"), shown on its bar.
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// The layer is done: `Pull complete`, `Already exists`, `Pushed`... The live bar goes
    /// away and the final status stays as a plain line above the bars still running, so the
    /// scrollback reads the same on a terminal as in a log.
    pub fn finish(self, status: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(sink) = &self.progress.sink {
            sink(status, Some(&self.id));
            return;
        }
        self.progress.line(&format!("{}: {status}", self.id));
    }

    /// The layer failed: its bar goes away (the error is reported once, by the caller).
    pub fn fail(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reads through, counting bytes on the layer's bar.
pub struct ProgressReader<'a, 'p, R> {
    pub inner: R,
    pub progress: &'a LayerProgress<'p>,
}

impl<R: Read> Read for ProgressReader<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
