//! Background jobs (the gallery-wide duplicate sweep): started by one RPC, watched by a server stream,
//! their result fetched by a third. Jobs belong to a tenant; another tenant cannot see them. One sweep
//! runs at a time (it uses every core).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tonic::{Code, Status};

use super::errors::{status, Reason};
use crate::proto;

/// A job's entry.
pub struct JobEntry {
    /// Owner.
    pub tenant: String,
    /// Latest state.
    pub state: watch::Sender<proto::Job>,
    /// Result once finished.
    pub result: Mutex<Option<proto::DuplicateSweepResult>>,
}

/// All jobs since start (kept in memory; results are also in the audit log).
#[derive(Default, Clone)]
pub struct Jobs {
    jobs: Arc<Mutex<HashMap<String, Arc<JobEntry>>>>,
    running: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Releases the one-sweep-at-a-time slot.
pub struct RunningSlot(Arc<AtomicBool>);

impl Drop for RunningSlot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Jobs {
    /// Claim the sweep slot, or RESOURCE_EXHAUSTED when a sweep is running.
    pub fn claim(&self) -> Result<RunningSlot, Status> {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(status(
                Code::ResourceExhausted,
                Reason::Overloaded,
                "a duplicate sweep is already running; retry when it has finished",
            ));
        }
        Ok(RunningSlot(self.running.clone()))
    }

    /// Register a new job.
    pub fn create(&self, tenant: &str, job: proto::Job) -> Arc<JobEntry> {
        let (tx, _) = watch::channel(job.clone());
        let entry = Arc::new(JobEntry {
            tenant: tenant.to_string(),
            state: tx,
            result: Mutex::new(None),
        });
        lock(&self.jobs).insert(job.job_id, entry.clone());
        entry
    }

    /// A job of `tenant`.
    pub fn get(&self, tenant: &str, job_id: &str) -> Result<Arc<JobEntry>, Status> {
        lock(&self.jobs)
            .get(job_id)
            .filter(|j| j.tenant == tenant)
            .cloned()
            .ok_or_else(|| status(Code::NotFound, Reason::JobNotFound, "no such job"))
    }
}

impl JobEntry {
    /// The result, or FAILED_PRECONDITION while running.
    pub fn result(&self) -> Result<proto::DuplicateSweepResult, Status> {
        let job = self.state.borrow().clone();
        if let Some(r) = lock(&self.result).clone() {
            return Ok(proto::DuplicateSweepResult {
                job: Some(job),
                ..r
            });
        }
        if job.state == proto::JobState::Failed as i32 {
            return Err(status(
                Code::FailedPrecondition,
                Reason::JobNotFinished,
                format!("the job failed: {}", job.error),
            ));
        }
        Err(status(
            Code::FailedPrecondition,
            Reason::JobNotFinished,
            "the job has not finished",
        ))
    }

    /// Publish new state.
    pub fn update(&self, f: impl FnOnce(&mut proto::Job)) {
        self.state.send_modify(f);
    }

    /// Store the result and mark the job succeeded.
    pub fn finish(&self, result: proto::DuplicateSweepResult, now_ms: i64) {
        *lock(&self.result) = Some(result);
        self.update(|j| {
            j.state = proto::JobState::Succeeded as i32;
            j.progress = 1.0;
            j.finished_at_ms = now_ms;
        });
    }
}
