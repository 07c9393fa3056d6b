//! Hot reload: watches the policy directory (and listens for SIGHUP), builds the new snapshot off the request path
//! and swaps it in only when it loads cleanly. A broken edit is refused: the previous policy keeps serving, the
//! problems are logged with file and line, and the refusal is recorded in the store (status rpc, metrics).
//!
//! A mounted Kubernetes ConfigMap changes by a swap of its `..data` symlink, which the directory watch sees; the
//! files are then read from the one version `..data` names (see `source.rs`). The kubelet's removal of the old
//! version, like any change that leaves the files' content as it was, loads to the serving version: nothing is
//! swapped and it is not counted as a reload (only as `reloads_unchanged`).
//!
//! Editors save in bursts (write, rename, chmod) and authors save half-written files, so events are debounced: a
//! reload starts once the directory has been quiet for [`QUIET_PERIOD`]. A half-written save is refused and the
//! next save reloads.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::policy::{loader, store::PolicyStore};

/// How long the directory must stay quiet before a reload starts.
pub const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new policy version is serving.
    Swapped {
        /// The new version.
        version: String,
    },
    /// The files load but hash to the serving version: nothing to do, and not counted as a reload (only in
    /// `reloads_unchanged`).
    Unchanged,
    /// The new files do not load; the previous policy keeps serving.
    Refused,
}

/// Loads `dir` on the loader thread (see [`loader`]) and swaps it in if it loads and differs from the serving policy.
pub async fn reload(store: &PolicyStore, dir: &Path) -> ReloadOutcome {
    let path = dir.to_owned();
    let serving = store.current();
    // The serving snapshot lends its role table when roles.toml and users.csv are unchanged.
    let loaded = loader::load(&path, Some(serving)).await;
    match loaded {
        Ok(snapshot) if snapshot.version == store.current().version => {
            // A kubelet's cleanup of its old ConfigMap directory, an editor's save of the same bytes: not a reload.
            store.note_unchanged();
            debug!(policy_version = %snapshot.version, "policy files changed on disk but not in content: nothing to reload");
            ReloadOutcome::Unchanged
        }
        Ok(snapshot) => {
            let version = snapshot.version.clone();
            let previous = store.current().version.clone();
            store.replace(snapshot);
            info!(%previous, policy_version = %version, "policy reloaded");
            ReloadOutcome::Swapped { version }
        }
        Err(err) => {
            store.refuse(&err);
            warn!(serving = %store.current().version, "policy reload refused, the previous policy keeps serving: {err}");
            ReloadOutcome::Refused
        }
    }
}

/// Reloads whenever the policy directory changes (debounced) or the process gets SIGHUP, until `shutdown`.
///
/// Returns an error only if the directory cannot be watched at all; SIGHUP still works then, and the caller decides
/// whether that is fatal (it is not: serving goes on with the loaded policy).
pub async fn watch(
    store: Arc<PolicyStore>,
    dir: PathBuf,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    // No await before the watch is set: a change made right after the server started must not go unseen.
    // (Resolved before the watch is set, so that a symlink moved in between costs a needless re-watch, never a
    // missed one.)
    let mut watched = std::fs::canonicalize(&dir).ok();
    let mut watcher = start_watcher(&dir, tx.clone());
    if let Err(err) = &watcher {
        warn!(%err, dir = %dir.display(), "cannot watch the policy directory; reload with SIGHUP");
    }
    spawn_sighup(tx.clone());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            event = rx.recv() => {
                if event.is_none() {
                    break;
                }
                // Debounce: wait until no event has arrived for the quiet period.
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(QUIET_PERIOD) => break,
                        more = rx.recv() => if more.is_none() { break },
                    }
                }
                reload(&store, &dir).await;
                // The watch is on the directory the path led to when it was set. If the path is a symlink that
                // now leads elsewhere (a deployment that swaps a link to a new checkout, which this reload has
                // just read), the watch moves there, or later edits would go unseen.
                let now = tokio::fs::canonicalize(&dir).await.ok();
                if now != watched || watcher.is_err() {
                    drop(watcher);
                    watcher = start_watcher(&dir, tx.clone());
                    match &watcher {
                        Ok(_) => info!(dir = %dir.display(), leads_to = ?now, "watching the policy directory where it now leads"),
                        Err(err) => warn!(%err, dir = %dir.display(), "cannot watch the policy directory; reload with SIGHUP"),
                    }
                    watched = now;
                }
            }
        }
    }
    drop(watcher);
}

fn start_watcher(dir: &Path, tx: mpsc::Sender<()>) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
            Err(_) => true,
        };
        if relevant {
            // A full channel means a reload is already pending: dropping this event loses nothing.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(unix)]
fn spawn_sighup(tx: mpsc::Sender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    info!("received SIGHUP: reloading the policy");
                    if tx.send(()).await.is_err() {
                        break;
                    }
                }
            });
        }
        Err(err) => warn!(%err, "cannot listen for SIGHUP"),
    }
}

#[cfg(not(unix))]
fn spawn_sighup(_tx: mpsc::Sender<()>) {}
