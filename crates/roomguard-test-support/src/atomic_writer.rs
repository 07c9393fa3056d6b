//! The kubelet's `AtomicWriter` (kubernetes `pkg/volume/util/atomic_writer.go`, `Write`), step for step: how a
//! ConfigMap volume looks to the process that mounts it, and how an update changes it.
//!
//! The mount directory holds the real files in a hidden timestamped directory (`..2026_11_27_19_30_00.123456789`),
//! a symlink `..data` to it, and per key a top-level symlink `model.conf -> ..data/model.conf`. An update:
//!
//! 1. validates the keys (relative, no `..` element, not starting with `..`);
//! 2. reads the current timestamped directory from `..data`;
//! 3. lists the keys of the old version that the new payload no longer has;
//! 4. compares the payload with the old version: nothing changed and nothing removed means nothing is written
//!    (the kubelet's periodic resync);
//! 5. creates a new timestamped directory (`MkdirTemp` with a `..2006_01_02_15_04_05.` prefix), mode 0755;
//! 6. writes every key into it (mode 0644, the ConfigMap volume's default);
//! 7. (sets ownership when asked: not simulated, a ConfigMap volume has no `fsUser`);
//! 8. creates `..data_tmp -> <new timestamped directory>`;
//! 9. renames `..data_tmp` over `..data` (atomic: the new version is published);
//! 10. creates the top-level symlinks of keys that have none yet;
//! 11. removes the top-level symlinks of removed keys;
//! 12. removes the old timestamped directory (the cleanup).
//!
//! ConfigMaps are flat: keys are file names, never paths.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";

/// A ConfigMap's data: key -> content.
pub type Payload = BTreeMap<String, Vec<u8>>;

/// The steps of [`ConfigMapVolume::write_observed`] after which an observer is called: the directory is then in
/// a state that a reader can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// 5 and 6: the new timestamped directory exists and holds every key.
    NewVersionWritten,
    /// 8: `..data_tmp` points to it.
    TemporaryLinkCreated,
    /// 9: `..data` points to it: the new version is published.
    DataLinkSwapped,
    /// 10: the new keys have their top-level symlinks.
    NewKeysLinked,
    /// 11: the removed keys' top-level symlinks are gone.
    RemovedKeysUnlinked,
    /// 12: the old timestamped directory is gone.
    OldVersionRemoved,
}

/// A mounted ConfigMap volume in a temporary directory, written as the kubelet writes it.
pub struct ConfigMapVolume {
    dir: tempfile::TempDir,
}

/// What [`ConfigMapVolume::write_until_cleanup`] left to do: step 12, removing the old timestamped directory.
#[must_use = "the kubelet always cleans up: call `run`"]
pub struct PendingCleanup {
    old: Option<PathBuf>,
}

impl PendingCleanup {
    /// Step 12: removes the previous timestamped directory, if the write replaced one.
    pub fn run(self) {
        if let Some(old) = self.old {
            fs::remove_dir_all(old).unwrap();
        }
    }

    /// True when the write published a new version (and so has an old one to remove).
    pub fn replaced_a_version(&self) -> bool {
        self.old.is_some()
    }
}

impl ConfigMapVolume {
    /// A volume as the kubelet mounts it: the first write of `payload` into an empty directory.
    pub fn mount(payload: &Payload) -> ConfigMapVolume {
        let volume = ConfigMapVolume {
            dir: tempfile::tempdir().unwrap(),
        };
        volume.write(payload);
        volume
    }

    /// The mount directory (what roomguard is pointed at).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The timestamped directory `..data` points to now.
    pub fn current_version_dir(&self) -> PathBuf {
        fs::read_link(self.path().join(DATA_DIR)).unwrap()
    }

    /// The mount directory's entries (names only, sorted): what `ls -a` shows.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// One kubelet update, whole (steps 1 to 12).
    pub fn write(&self, payload: &Payload) {
        self.write_until_cleanup(payload).run();
    }

    /// One kubelet update up to and including step 11; the cleanup (step 12) is left to the caller, so that a test
    /// can look at the directory between the swap and the cleanup.
    pub fn write_until_cleanup(&self, payload: &Payload) -> PendingCleanup {
        let mut old = None;
        self.write_steps(payload, &mut |_| {}, &mut old);
        PendingCleanup { old }
    }

    /// One kubelet update, whole, calling `observe` after each step that changes what a reader can see.
    pub fn write_observed(&self, payload: &Payload, observe: &mut dyn FnMut(Step)) {
        let mut old = None;
        self.write_steps(payload, observe, &mut old);
        PendingCleanup { old }.run();
        observe(Step::OldVersionRemoved);
    }

    fn write_steps(
        &self,
        payload: &Payload,
        observe: &mut dyn FnMut(Step),
        old_out: &mut Option<PathBuf>,
    ) {
        let target = self.path();
        // (1)
        for key in payload.keys() {
            assert!(
                !key.is_empty() && !key.contains('/') && !key.starts_with(".."),
                "`{key}` is not a ConfigMap key the kubelet would project into a flat volume"
            );
        }
        // (2)
        let data_dir = target.join(DATA_DIR);
        let mut old_ts = fs::read_link(&data_dir).ok();
        let mut paths_to_remove = Vec::new();
        let mut should_write = true;
        if let Some(old) = &old_ts {
            let old_path = target.join(old);
            // (3)
            for entry in fs::read_dir(&old_path).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if !payload.contains_key(&name) {
                    paths_to_remove.push(name);
                }
            }
            // (4)
            let changed = payload
                .iter()
                .any(|(key, content)| fs::read(old_path.join(key)).ok().as_ref() != Some(content));
            if !changed && paths_to_remove.is_empty() {
                // Already up to date: only the top-level symlinks are made sure of, and nothing is removed.
                should_write = false;
                old_ts = None;
            }
        }
        if should_write {
            // (5)
            let ts_dir = new_timestamp_dir(target);
            let ts_name = ts_dir.file_name().unwrap().to_owned();
            // (6)
            for (key, content) in payload {
                let path = ts_dir.join(key);
                fs::write(&path, content).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            }
            observe(Step::NewVersionWritten);
            // (8)
            let new_data_dir = target.join(NEW_DATA_DIR);
            symlink(&ts_name, &new_data_dir).unwrap();
            observe(Step::TemporaryLinkCreated);
            // (9)
            fs::rename(&new_data_dir, &data_dir).unwrap();
            observe(Step::DataLinkSwapped);
        }
        // (10)
        for key in payload.keys() {
            let visible = target.join(key);
            if fs::read_link(&visible).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                symlink(Path::new(DATA_DIR).join(key), &visible).unwrap();
            }
        }
        observe(Step::NewKeysLinked);
        // (11)
        for key in &paths_to_remove {
            fs::remove_file(target.join(key)).unwrap();
        }
        observe(Step::RemovedKeysUnlinked);
        *old_out = old_ts.map(|old| target.join(old));
    }
}

/// `os.MkdirTemp(target, time.Now().UTC().Format("..2006_01_02_15_04_05."))`, then `chmod 0755`.
fn new_timestamp_dir(target: &Path) -> PathBuf {
    static RANDOM: AtomicU32 = AtomicU32::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let prefix = utc_timestamp(now.as_secs());
    loop {
        // MkdirTemp's suffix is a random decimal number; the nanoseconds and a counter make one that never repeats.
        let suffix = now.subsec_nanos() ^ RANDOM.fetch_add(0x9e37_79b9, Ordering::Relaxed);
        let path = target.join(format!("..{prefix}.{suffix}"));
        match fs::create_dir(&path) {
            Ok(()) => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
                return path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("cannot create a timestamped directory: {e}"),
        }
    }
}

/// `2006_01_02_15_04_05` for `secs` since the epoch, UTC (the civil-from-days algorithm).
pub fn utc_timestamp(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap();
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The ConfigMap `kubectl create configmap --from-file=<dir>` makes of a policy directory: every regular file at
/// its top level (subdirectories such as `tests/` are left out: ConfigMaps are flat).
pub fn payload_of(dir: &Path) -> Payload {
    let mut payload = Payload::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let key = path.file_name().unwrap().to_string_lossy().into_owned();
            payload.insert(key, fs::read(&path).unwrap());
        }
    }
    payload
}

/// `payload` with the first `from` in `key` replaced by `to`.
pub fn edited(payload: &Payload, key: &str, from: &str, to: &str) -> Payload {
    let mut edited = payload.clone();
    let text = String::from_utf8(edited[key].clone()).unwrap();
    assert!(text.contains(from), "{key} does not contain {from:?}");
    edited.insert(key.into(), text.replacen(from, to, 1).into_bytes());
    edited
}
