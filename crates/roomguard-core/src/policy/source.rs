//! Where one load reads the policy files from: the policy directory itself, or, when the directory is a volume the
//! kubelet projects (a mounted ConfigMap), the one timestamped directory its `..data` symlink names.
//!
//! The kubelet publishes a ConfigMap update by writing a new hidden directory (`..2026_11_27_19_30_00.123456789`)
//! and renaming a symlink to it over `..data`; the files in the mount (`rules.csv -> ..data/rules.csv`) are
//! symlinks through it, and a new key's symlink appears only after the swap. Reading each file through its own
//! top-level symlink could mix two versions if a load ran during an update (the new `rules.csv` without the new
//! `users.csv`). Reading every file from the directory `..data` named when the load began reads one published
//! version whole: the kubelet never changes a timestamped directory once it is published, and removes it only after
//! `..data` has moved on. A load that sees `..data` move while it read is thrown away and done again
//! ([`PolicySource::superseded`]).
//!
//! Every other entry of the directory is ignored: the policy files are read by name, so the hidden `..` entries,
//! keys roomguard does not know (a `README.md`) and the top-level symlinks themselves are never listed.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The symlink through which the kubelet publishes the current version of a projected volume.
pub const DATA_LINK: &str = "..data";

/// The directory one load reads the policy files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    files: PathBuf,
    /// `..data`'s target when the load began, for a projected volume.
    published: Option<PathBuf>,
}

impl PolicySource {
    /// Where to read `dir`'s policy files now: the directory `dir/..data` names if `dir` is a projected volume,
    /// else `dir` itself.
    pub fn resolve(dir: &Path) -> PolicySource {
        match fs::read_link(dir.join(DATA_LINK)) {
            Ok(target) => PolicySource {
                files: dir.join(&target),
                published: Some(target),
            },
            // No `..data`, or not a symlink: a plain directory.
            Err(_) => PolicySource {
                files: dir.to_owned(),
                published: None,
            },
        }
    }

    /// The directory to read the policy files from.
    pub fn files(&self) -> &Path {
        &self.files
    }

    /// True when `dir/..data` no longer names the version this source read: the kubelet published another one
    /// meanwhile, and may have removed this one in the middle of the read. Always false for a plain directory.
    pub fn superseded(&self, dir: &Path) -> bool {
        self.published
            .as_ref()
            .is_some_and(|read| fs::read_link(dir.join(DATA_LINK)).ok().as_ref() != Some(read))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A plain directory is read as it is, and is never superseded.
    #[test]
    fn a_plain_directory_is_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let source = PolicySource::resolve(dir.path());
        assert_eq!(source.files(), dir.path());
        assert!(!source.superseded(dir.path()));
    }

    /// A projected volume is read from the version `..data` names, until `..data` moves on.
    #[test]
    fn a_projected_volume_is_read_from_its_published_version() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("..2026_11_27_19_30_00.1")).unwrap();
        fs::create_dir(dir.path().join("..2026_11_27_19_31_00.2")).unwrap();
        symlink("..2026_11_27_19_30_00.1", dir.path().join(DATA_LINK)).unwrap();
        let source = PolicySource::resolve(dir.path());
        assert_eq!(
            source.files(),
            dir.path().join("..2026_11_27_19_30_00.1").as_path()
        );
        assert!(!source.superseded(dir.path()));

        symlink("..2026_11_27_19_31_00.2", dir.path().join("..data_tmp")).unwrap();
        fs::rename(dir.path().join("..data_tmp"), dir.path().join(DATA_LINK)).unwrap();
        assert!(source.superseded(dir.path()));
        assert_eq!(
            PolicySource::resolve(dir.path()).files(),
            dir.path().join("..2026_11_27_19_31_00.2").as_path()
        );
    }
}
