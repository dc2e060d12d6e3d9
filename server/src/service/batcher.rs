//! Identification batching: concurrent Identify calls share one pass over the gallery.
//!
//! A 1:N scan is memory-bound: 1M × 128 f32 vectors are 512 MB per pass whatever the number of queries
//! in it, and the index's blocked kernel scores up to 64 queries per pass. One scan thread takes every
//! query waiting when it starts a pass, so under load queries wait for at most one pass instead of
//! queueing behind each other. The queue is bounded: when full, RESOURCE_EXHAUSTED.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use sinhtrac_engine::gallery::{Candidate, Gallery, GalleryError, SearchMode};
use tokio::sync::oneshot;
use tonic::{Code, Status};

use super::errors::{self, status, Reason};
use super::limits::Cancel;

/// Most queries in one pass.
pub const MAX_BATCH: usize = 64;

struct Query {
    tenant: String,
    vector: Vec<f32>,
    k: usize,
    threshold: f32,
    mode: SearchMode,
    cancel: Cancel,
    reply: oneshot::Sender<Result<Vec<Candidate>, GalleryError>>,
}

/// Handle to the scan thread.
#[derive(Clone)]
pub struct SearchBatcher {
    tx: SyncSender<Query>,
}

impl SearchBatcher {
    /// Start the scan thread; at most `queue` queries wait. The thread ends (join the handle) once
    /// every clone of the batcher is dropped.
    pub fn start(
        gallery: Arc<Gallery>,
        queue: usize,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = sync_channel(queue.max(1));
        let thread = std::thread::Builder::new()
            .name("sinhtrac-search".into())
            .spawn(move || scan_loop(&gallery, rx))?;
        Ok((SearchBatcher { tx }, thread))
    }

    /// Identify one query; waits for the pass that includes it.
    pub async fn identify(
        &self,
        tenant: &str,
        vector: Vec<f32>,
        k: usize,
        threshold: f32,
        mode: SearchMode,
        cancel: Cancel,
    ) -> Result<Vec<Candidate>, Status> {
        let (reply, wait) = oneshot::channel();
        let q = Query {
            tenant: tenant.to_string(),
            vector,
            k,
            threshold,
            mode,
            cancel,
            reply,
        };
        match self.tx.try_send(q) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(status(
                    Code::ResourceExhausted,
                    Reason::Overloaded,
                    "identification queue is full; retry with backoff",
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(status(
                    Code::Unavailable,
                    Reason::InternalError,
                    "search stopped",
                ))
            }
        }
        match wait.await {
            Ok(r) => r.map_err(errors::gallery),
            Err(_) => Err(status(
                Code::Internal,
                Reason::InternalError,
                "search failed",
            )),
        }
    }
}

fn scan_loop(gallery: &Gallery, rx: Receiver<Query>) {
    // Ends when every handle is gone (shutdown).
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        // Queries whose caller gave up are not scanned.
        let (live, dead): (Vec<Query>, Vec<Query>) =
            batch.into_iter().partition(|q| !q.cancel.is_cancelled());
        for q in dead {
            let _ = q.reply.send(Err(GalleryError::Cancelled));
        }
        let mut groups: HashMap<(String, usize, bool), Vec<Query>> = HashMap::new();
        for q in live {
            let key = (q.tenant.clone(), q.k, q.mode == SearchMode::Approximate);
            groups.entry(key).or_default().push(q);
        }
        for ((tenant, k, _), group) in groups {
            let threshold = group
                .iter()
                .map(|q| q.threshold)
                .fold(f32::INFINITY, f32::min);
            let queries: Vec<f32> = group
                .iter()
                .flat_map(|q| q.vector.iter().copied())
                .collect();
            let result = gallery.identify_batch(&tenant, &queries, k, threshold, group[0].mode);
            match result {
                Ok(per_query) => {
                    for (q, found) in group.into_iter().zip(per_query) {
                        let mine = found
                            .into_iter()
                            .filter(|c| c.score >= q.threshold)
                            .collect();
                        let _ = q.reply.send(Ok(mine));
                    }
                }
                Err(e) => {
                    // A batch fails as a whole only for errors of one query (non-finite, dimension):
                    // retry each alone so the others are not punished for it.
                    tracing::debug!(error = %e, "batched search failed; retrying queries alone");
                    for q in group {
                        let r = gallery.identify(&tenant, &q.vector, k, q.threshold, q.mode);
                        let _ = q.reply.send(r);
                    }
                }
            }
        }
    }
}
