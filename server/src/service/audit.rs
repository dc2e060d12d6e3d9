//! The append-only audit log: one JSON line per operation (who, what, subject, scores, decision, model
//! ids, request id; never images or templates), durable before the caller gets the decision.
//!
//! One writer thread appends and fsyncs; requests that arrive while a sync runs share the next one
//! (group commit), so the cost per request falls as load rises.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use serde::Serialize;
use tokio::sync::oneshot;

/// One audited operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditRecord {
    /// Unix epoch milliseconds.
    pub ts_ms: i64,
    /// Request id returned to the caller.
    pub request_id: String,
    /// Tenant.
    pub tenant: String,
    /// Key id (first 8 hex digits of the key's hash).
    pub key_id: String,
    /// RPC name.
    pub operation: &'static str,
    /// Caller's correlation id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_reference: String,
    /// Subject concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// gRPC status code name ("OK", "INVALID_ARGUMENT", ...).
    pub status: String,
    /// Reason of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Similarity score of a 1:1 decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// Threshold applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// FMR the threshold was calibrated for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_fmr: Option<f64>,
    /// The decision (match / live / enrolled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<bool>,
    /// Liveness score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_score: Option<f32>,
    /// Candidates of a search (subject id, score).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<(String, f32)>,
    /// A fused search: the threshold each candidate passed, in `candidates` order (it depends on
    /// which probes the candidate could be compared with).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidate_thresholds: Vec<f32>,
    /// Models involved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_ids: Vec<String>,
    /// Milliseconds the request took.
    pub elapsed_ms: f64,
}

struct Entry {
    line: Vec<u8>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the audit writer.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Entry>,
}

/// Joins the writer at shutdown.
pub struct AuditWriter {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditWriter {
    /// Wait for every record sent so far to be written (call after the last [`AuditLog`] is dropped).
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_group(file: &mut File, group: &mut Vec<Entry>) {
    let mut result = Ok(());
    for e in group.iter() {
        if let Err(err) = file.write_all(&e.line) {
            result = Err(err.to_string());
            break;
        }
    }
    if result.is_ok() {
        result = file.sync_data().map_err(|e| e.to_string());
    }
    if let Err(e) = &result {
        tracing::error!(error = %e, "audit log write failed");
    }
    for e in group.drain(..) {
        if let Some(done) = e.done {
            let _ = done.send(result.clone());
        }
    }
}

impl AuditLog {
    /// Open (append) the log file and start the writer.
    pub fn open(path: &Path) -> std::io::Result<(AuditLog, AuditWriter)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<Entry>();
        let thread = std::thread::Builder::new()
            .name("sinhtrac-audit".into())
            .spawn(move || {
                let mut group = Vec::new();
                // Ends when every sender is gone: the service has shut down.
                while let Ok(first) = rx.recv() {
                    group.push(first);
                    while let Ok(more) = rx.try_recv() {
                        group.push(more);
                    }
                    write_group(&mut file, &mut group);
                }
            })?;
        Ok((
            AuditLog { tx },
            AuditWriter {
                thread: Some(thread),
            },
        ))
    }

    /// Append a record and wait until it is on disk.
    pub async fn record(&self, record: &AuditRecord) -> Result<(), String> {
        let mut line = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Entry {
                line,
                done: Some(done),
            })
            .map_err(|_| "audit writer stopped".to_string())?;
        wait.await.map_err(|_| "audit writer stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_appended_as_json_lines_and_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("sinhtrac-audit-{}", std::process::id()));
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        for round in 0..2 {
            let (log, writer) = AuditLog::open(&path).unwrap();
            let r = AuditRecord {
                request_id: format!("r{round}"),
                operation: "Verify",
                status: "OK".into(),
                score: Some(0.5),
                ..Default::default()
            };
            log.record(&r).await.unwrap();
            drop(log);
            writer.finish();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["request_id"], "r0");
        assert_eq!(lines[1]["operation"], "Verify");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
