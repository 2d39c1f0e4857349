//! Secret files (`*_file`) polled for rotation: each watched file's
//! [`FileStamp`], looked at and re-read on a blocking thread, never on the
//! runtime's; a changed value is re-validated through the load path
//! (`Credential::reread_files`) and probed at once, or refused. A file is
//! first looked at by the poll that follows its credential's start or
//! change (`Seen::NotYet`), so the loop itself never calls the file system.

use std::path::PathBuf;
use std::time::SystemTime;

use super::Scheduler;
use crate::config::Credential;
use crate::verdict::refusal;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    ino: u64,
}

/// What the scheduler knows of one secret file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// Not looked at yet (its credential was just added or changed): the
    /// next poll takes its stamp without re-reading it, since the value in
    /// use was read by the load.
    NotYet,
    /// Its stamp at the last look (`None`: it could not be looked at).
    Stamp(Option<FileStamp>),
}

/// The secret files of `cred` to watch, none looked at yet.
pub(super) fn watch(cred: &Credential) -> Vec<(PathBuf, Seen)> {
    cred.secret_files()
        .into_iter()
        .map(|p| (p.to_path_buf(), Seen::NotYet))
        .collect()
}

/// `stat`: blocking, so only ever called on a blocking thread.
fn stamp(path: &PathBuf) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        ino: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

impl Scheduler {
    pub(super) async fn poll_secrets(&mut self) {
        // What to look at: every watched file with its last stamp.
        let watched: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| !e.files.is_empty())
            .map(|(name, e)| {
                (
                    name.clone(),
                    e.cred.clone(),
                    e.key_path.clone(),
                    e.files.clone(),
                )
            })
            .collect();
        if watched.is_empty() {
            return;
        }
        // Secret files are looked at (`stat`) and read on a blocking thread,
        // never on the runtime's (a hung mount must not stall it); a stop
        // does not wait for it.
        let strict = self.strict;
        let read = tokio::task::spawn_blocking(move || {
            watched
                .into_iter()
                .filter_map(|(name, cred, key_path, files)| {
                    let stamps: Vec<_> = files.iter().map(|(path, _)| stamp(path)).collect();
                    let changed = files
                        .iter()
                        .zip(&stamps)
                        .any(|((_, last), now)| matches!(last, Seen::Stamp(s) if s != now));
                    let first_look = files.iter().any(|(_, last)| *last == Seen::NotYet);
                    (changed || first_look).then(|| {
                        let result = changed.then(|| cred.reread_files(&key_path, strict));
                        (name, stamps, result)
                    })
                })
                .collect::<Vec<_>>()
        });
        let (stop, cancel) = (self.stop.clone(), self.cancel.clone());
        let looked = tokio::select! {
            _ = stop.cancelled() => return,
            _ = cancel.cancelled() => return,
            read = read => match read {
                Ok(looked) => looked,
                Err(_) => return,
            },
        };
        for (name, stamps, result) in looked {
            if let Some(e) = self.entries.get_mut(&name) {
                for ((_, last), now) in e.files.iter_mut().zip(stamps) {
                    *last = Seen::Stamp(now);
                }
            }
            let Some(result) = result else {
                continue;
            };
            let Some(e) = self.entries.get(&name) else {
                continue;
            };
            // The same checks as at load (`Credential::reread_files`), then
            // what credwatch refuses to send (`verdict::refusal`).
            let outcome = match result {
                Ok(Some(reread)) => {
                    for w in &reread.warnings {
                        tracing::warn!(credential = %name, "{w}");
                    }
                    match refusal(&reread.credential, &e.key_path, "new ") {
                        Some(why) => Err(why),
                        None => Ok(Some(reread.credential)),
                    }
                }
                Ok(None) => Ok(None),
                Err(err) => Err(err
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")),
            };
            match outcome {
                Ok(Some(new)) => self.accept(&name, Some(new)),
                // Back to the value in use after a refusal: a change too.
                Ok(None) if e.refused => self.accept(&name, None),
                Ok(None) => {}
                Err(why) => self.refuse(&name, why),
            }
        }
    }
}
