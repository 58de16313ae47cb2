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
            // Not mounted yet: look again soon (only while it is missing).
            std::thread::sleep(resync.min(Duration::from_secs(2)));
            return Wake::Resync;
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
}
