//! Waiting for work: inotify events on the bundle folder (kubelet's `..data` rename
//! arrives as IN_MOVED_TO) or the resync deadline. The inotify reader thread blocks in
//! read(2) and the main loop in a channel receive with a timeout, so an idle agent
//! wakes only at resync time.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use inotify::{Inotify, WatchMask};
use tracing::warn;

/// Why the loop woke up.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    Changed,
    Resync,
}

pub struct Watcher {
    dir: PathBuf,
    rx: Option<Receiver<()>>,
}

impl Watcher {
    pub fn new(dir: &Path) -> Self {
        let mut w = Watcher {
            dir: dir.to_path_buf(),
            rx: None,
        };
        w.arm();
        w
    }

    /// (Re)starts the inotify thread; if the folder is not there yet, resyncs cover it.
    fn arm(&mut self) {
        let mask = WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE
            | WatchMask::CLOSE_WRITE
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        let ino = match Inotify::init() {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, "inotify unavailable; relying on resync");
                return;
            }
        };
        if let Err(e) = ino.watches().add(&self.dir, mask) {
            warn!(dir = %self.dir.display(), error = %e, "cannot watch the bundle folder yet; relying on resync");
            return;
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ino = ino;
            let mut buf = [0u8; 4096];
            loop {
                match ino.read_events_blocking(&mut buf) {
                    Ok(events) => {
                        let mut gone = false;
                        let mut any = false;
                        for e in events {
                            any = true;
                            gone |= e.mask.intersects(
                                inotify::EventMask::DELETE_SELF
                                    | inotify::EventMask::MOVE_SELF
                                    | inotify::EventMask::IGNORED,
                            );
                        }
                        if any && tx.send(()).is_err() {
                            return;
                        }
                        if gone {
                            return; // the receiver sees the hang-up and re-arms
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        self.rx = Some(rx);
    }

    /// Blocks until the bundle changes or `resync` passes.
    pub fn wait(&mut self, resync: Duration) -> Wake {
        if self.rx.is_none() {
            self.arm();
        }
        let Some(rx) = &self.rx else {
            // Not mounted yet, or no inotify instance left: poll `..data`.
            return self.poll(resync);
        };
        match rx.recv_timeout(resync) {
            Ok(()) => {
                // One swap is several events: take them all, apply once.
                while rx.try_recv().is_ok() {}
                Wake::Changed
            }
            Err(RecvTimeoutError::Timeout) => Wake::Resync,
            Err(RecvTimeoutError::Disconnected) => {
                self.rx = None;
                Wake::Changed
            }
        }
    }

    /// Without a watch (the folder is not mounted yet, or `fs.inotify.max_user_instances`
    /// is used up, 128 per user by default): look at the `..data` link every 2 s and wake
    /// only when it changed (or at the resync), retrying the watch each time. An apply
    /// per look would rewrite the agent's status every 2 s and cost CPU on every node.
    fn poll(&mut self, resync: Duration) -> Wake {
        const EVERY: Duration = Duration::from_secs(2);
        let data = self.dir.join("..data");
        let seen = std::fs::read_link(&data).ok();
        let start = std::time::Instant::now();
        loop {
            let left = resync.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Wake::Resync;
            }
            std::thread::sleep(left.min(EVERY));
            if std::fs::read_link(&data).ok() != seen {
                return Wake::Changed;
            }
            self.arm();
            if self.rx.is_some() {
                // Watching again; a swap between the last look and the watch is caught
                // by one more comparison.
                if std::fs::read_link(&data).ok() != seen {
                    return Wake::Changed;
                }
                return self.wait(resync.saturating_sub(start.elapsed()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_watch_it_waits_for_the_resync_instead_of_waking_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(&tmp.path().join("not-mounted-yet"));
        let t0 = std::time::Instant::now();
        assert_eq!(w.wait(Duration::from_millis(300)), Wake::Resync);
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
