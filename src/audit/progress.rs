//! How a long audit shows it is moving: a bar on a terminal (rooms done of rooms selected, events, files, bytes,
//! findings, ETA), plain lines on stderr every few seconds otherwise (a log, a CI job, `nohup`), or nothing.

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    /// A bar.
    Bar,
    /// A plain line every few seconds.
    Lines,
    /// Nothing.
    None,
}

/// How often a plain line is written.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// The counts shown, updated by every room's task.
#[derive(Debug, Default)]
pub struct Counts {
    /// Rooms selected.
    pub rooms_total: AtomicU64,
    /// Rooms finished.
    pub rooms_done: AtomicU64,
    /// Events read.
    pub events: AtomicU64,
    /// Files read.
    pub files: AtomicU64,
    /// Bytes of files read.
    pub bytes: AtomicU64,
    /// Findings.
    pub findings: AtomicU64,
}

/// The display: started once the rooms are selected, stopped at the end.
#[derive(Debug)]
pub struct Progress {
    counts: Arc<Counts>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing `counts` as `mode` says.
    pub fn start(mode: ProgressMode, counts: Arc<Counts>) -> Progress {
        let bar_wanted = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Bar => true,
            ProgressMode::Lines | ProgressMode::None => false,
        };
        if mode == ProgressMode::None {
            return Progress {
                counts,
                ticker: None,
                bar: None,
            };
        }
        if bar_wanted {
            let bar = ProgressBar::with_draw_target(
                Some(counts.rooms_total.load(Relaxed)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} rooms, {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let ticker = {
                let bar = bar.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    loop {
                        bar.set_length(counts.rooms_total.load(Relaxed));
                        bar.set_position(counts.rooms_done.load(Relaxed));
                        bar.set_message(summary(&counts));
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                })
            };
            return Progress {
                counts,
                ticker: Some(ticker),
                bar: Some(bar),
            };
        }
        let ticker = {
            let counts = counts.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(LINE_EVERY).await;
                    eprintln!("{}", line(&counts, started.elapsed()));
                }
            })
        };
        Progress {
            counts,
            ticker: Some(ticker),
            bar: None,
        }
    }

    /// Stops the display, leaving the last state on screen.
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.set_position(self.counts.rooms_done.load(Relaxed));
            bar.set_message(summary(&self.counts));
            bar.finish();
        }
    }
}

/// `12,000 events, 40 files (3.2 MiB), 5 findings`.
fn summary(counts: &Counts) -> String {
    format!(
        "{} events, {} files ({}), {} findings",
        counts.events.load(Relaxed),
        counts.files.load(Relaxed),
        HumanBytes(counts.bytes.load(Relaxed)),
        counts.findings.load(Relaxed)
    )
}

/// One plain progress line, with an ETA from the rooms' pace once one room is done.
fn line(counts: &Counts, elapsed: Duration) -> String {
    let done = counts.rooms_done.load(Relaxed);
    let total = counts.rooms_total.load(Relaxed);
    let eta = if done > 0 && total > done {
        let per_room = elapsed.as_secs_f64() / done as f64;
        format!(
            ", ETA {}",
            HumanDuration(Duration::from_secs_f64(per_room * (total - done) as f64))
        )
    } else {
        String::new()
    };
    format!(
        "audit: {done}/{total} rooms, {}, {} elapsed{eta}",
        summary(counts),
        HumanDuration(elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain line says rooms done of selected, what was read, and an ETA from the pace so far.
    #[test]
    fn a_plain_line_says_how_far_and_how_long() {
        let counts = Counts::default();
        counts.rooms_total.store(10, Relaxed);
        counts.rooms_done.store(2, Relaxed);
        counts.events.store(1500, Relaxed);
        counts.files.store(3, Relaxed);
        counts.bytes.store(2048, Relaxed);
        counts.findings.store(1, Relaxed);
        let text = line(&counts, Duration::from_secs(20));
        assert!(
            text.starts_with("audit: 2/10 rooms, 1500 events, 3 files (2.00 KiB), 1 findings"),
            "{text}"
        );
        assert!(text.contains("ETA 80 seconds"), "{text}");
    }
}
