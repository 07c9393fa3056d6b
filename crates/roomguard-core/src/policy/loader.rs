//! One thread loads every policy of the process: the first load and each reload.
//!
//! Why one thread: glibc's malloc gives each thread an arena and keeps the memory freed in it for that arena's next
//! allocations. The role table is 256 shards of about 130 KiB allocations each, below the size glibc hands back to the
//! system on free; loaded on whichever blocking thread was free, each rewrite of a large `users.csv` allocated its
//! new table in another arena while the old table's memory stayed in its own (216 MiB resident after two rewrites of
//! a 1M-line file, from 84 MiB). Loading always on this thread allocates every table in one arena, so a reload reuses
//! what the previous table freed and the process stays at about two tables at most.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, mpsc},
};

use crate::policy::{
    PolicySnapshot,
    diagnostics::{PolicyError, Problem},
};

type Job = Box<dyn FnOnce() + Send>;

/// The loader thread's queue; `None` if the thread could not be started (then loads run where they are asked).
static LOADER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

fn loader() -> Option<&'static mpsc::Sender<Job>> {
    LOADER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("roomguard-loader".into())
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Loads `dir` on the loader thread (reusing what `serving` shares with it), waiting for the result.
pub fn load_blocking(
    dir: &Path,
    serving: Option<Arc<PolicySnapshot>>,
) -> Result<PolicySnapshot, PolicyError> {
    let (tx, rx) = mpsc::channel();
    let job = load_job(dir.to_owned(), serving, move |result| {
        let _ = tx.send(result);
    });
    if let Some(job) = queue(job) {
        // No loader thread: load here.
        job();
    }
    rx.recv()
        .unwrap_or_else(|_| Err(unexpected(dir, "the loader thread stopped")))
}

/// Loads `dir` on the loader thread without blocking the caller's runtime worker.
pub async fn load(
    dir: &Path,
    serving: Option<Arc<PolicySnapshot>>,
) -> Result<PolicySnapshot, PolicyError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = load_job(dir.to_owned(), serving, move |result| {
        let _ = tx.send(result);
    });
    if let Some(job) = queue(job) {
        // No loader thread: load on the blocking pool.
        drop(tokio::task::spawn_blocking(job));
    }
    rx.await
        .unwrap_or_else(|_| Err(unexpected(dir, "the loader thread stopped")))
}

/// Hands `job` to the loader thread; gives it back if there is none.
fn queue(job: Job) -> Option<Job> {
    match loader() {
        Some(queue) => queue.send(job).err().map(|mpsc::SendError(job)| job),
        None => Some(job),
    }
}

/// The job that loads `dir` and hands the result to `reply`; a panic inside loading (a bug, not an author's
/// mistake) becomes a refusal, and the loader thread lives on.
fn load_job(
    dir: PathBuf,
    serving: Option<Arc<PolicySnapshot>>,
    reply: impl FnOnce(Result<PolicySnapshot, PolicyError>) + Send + 'static,
) -> Job {
    Box::new(move || {
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            PolicySnapshot::load_reusing(&dir, serving.as_deref())
        }));
        // A panic's message can quote the data being loaded: it is not repeated here.
        reply(loaded.unwrap_or_else(|_| Err(unexpected(&dir, "loading panicked"))));
    })
}

fn unexpected(dir: &Path, what: &str) -> PolicyError {
    PolicyError {
        problems: vec![Problem::in_file(
            &dir.display().to_string(),
            format!("loading failed unexpectedly: {what}"),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every load runs on the one loader thread, and reports like a direct load.
    #[test]
    fn loads_run_on_the_loader_thread() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let direct = PolicySnapshot::load(&dir).unwrap();
        let through = load_blocking(&dir, None).unwrap();
        assert_eq!(through.version, direct.version);
        let (tx, rx) = mpsc::channel();
        loader()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            }))
            .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("roomguard-loader"));
        let err = load_blocking(Path::new("/nonexistent/policies"), None).unwrap_err();
        assert!(!err.problems.is_empty());
    }
}
