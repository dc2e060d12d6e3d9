//! Admission control, the worker pool and deadlines.
//!
//! CPU-heavy work (decoding, inference, scans) runs on tokio's blocking pool, at most `workers` at once.
//! Up to `queue_depth` more requests may wait for a worker; beyond that a request is refused at once
//! with RESOURCE_EXHAUSTED (load shedding), so latency stays bounded instead of a queue growing without
//! limit. Every request has a deadline (the caller's `grpc-timeout`, or the configured default): a
//! request that waits or runs past it gets DEADLINE_EXCEEDED, and its [`Cancel`] token tells the
//! running work to stop at the next stage boundary. Dropping the request future (the caller went away)
//! cancels the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::errors::{status, Reason};
use super::metrics::Metrics;

/// Tells running work whether to stop.
#[derive(Clone, Debug)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    deadline: Instant,
}

impl Cancel {
    /// A token expiring at `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Cancel {
            flag: Arc::new(AtomicBool::new(false)),
            deadline,
        }
    }

    /// Stop the work.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Whether the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Err(DEADLINE_EXCEEDED) once cancelled: call between stages.
    pub fn check(&self) -> Result<(), Status> {
        if self.is_cancelled() {
            Err(deadline_exceeded())
        } else {
            Ok(())
        }
    }
}

struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn deadline_exceeded() -> Status {
    status(
        Code::DeadlineExceeded,
        Reason::Deadline,
        "deadline exceeded; the request's work was stopped",
    )
}

/// Parse a `grpc-timeout` value (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The pool and its admission limit.
#[derive(Clone)]
pub struct Limits {
    admitted: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    default_deadline: Duration,
    metrics: Metrics,
}

struct Gauge(prometheus::IntGauge);

impl Gauge {
    fn up(g: &prometheus::IntGauge) -> Gauge {
        g.inc();
        Gauge(g.clone())
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Limits {
    /// `workers` running, `queue_depth` waiting.
    pub fn new(
        workers: usize,
        queue_depth: usize,
        default_deadline: Duration,
        metrics: Metrics,
    ) -> Self {
        let workers = workers.max(1);
        Limits {
            admitted: Arc::new(Semaphore::new(workers + queue_depth)),
            workers: Arc::new(Semaphore::new(workers)),
            default_deadline,
            metrics,
        }
    }

    /// The deadline of a request: its `grpc-timeout` (less a small margin so our DEADLINE_EXCEEDED
    /// reaches the caller before its own timer fires) or the default.
    pub fn deadline(&self, metadata: &MetadataMap) -> Instant {
        let now = Instant::now();
        let asked = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        match asked {
            Some(t) => {
                let margin = (t / 10).min(Duration::from_millis(50));
                now + t.saturating_sub(margin).min(self.default_deadline.max(t))
            }
            None => now + self.default_deadline,
        }
    }

    /// Run CPU-heavy `work` on the pool under admission control and the deadline.
    pub async fn run<T, F>(&self, method: &str, deadline: Instant, work: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> Result<T, Status> + Send + 'static,
    {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            self.metrics.shed.with_label_values(&[method]).inc();
            return Err(status(
                Code::ResourceExhausted,
                Reason::Overloaded,
                "server is at its concurrency limit; retry with backoff",
            ));
        };
        let _in_flight = Gauge::up(&self.metrics.in_flight);
        let cancel = Cancel::new(deadline);
        let _on_drop = CancelOnDrop(cancel.clone());
        let worker = {
            let _queued = Gauge::up(&self.metrics.queue_depth);
            let acquire = self.workers.clone().acquire_owned();
            match tokio::time::timeout_at(deadline.into(), acquire).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => {
                    return Err(status(
                        Code::Unavailable,
                        Reason::InternalError,
                        "shutting down",
                    ))
                }
                Err(_) => return Err(deadline_exceeded()),
            }
        };
        let token = cancel.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _worker = worker;
            token.check()?;
            work(&token)
        });
        match tokio::time::timeout_at(deadline.into(), handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => {
                tracing::error!(error = %join, "worker task failed");
                Err(status(
                    Code::Internal,
                    Reason::InternalError,
                    "internal error (see server log)",
                ))
            }
            Err(_) => {
                cancel.cancel();
                Err(deadline_exceeded())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values_parse() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("1234567890S"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_beyond_workers_and_queue_are_shed() {
        let limits = Limits::new(1, 1, Duration::from_secs(5), Metrics::new().unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut running = Vec::new();
        for _ in 0..2 {
            let (l, w) = (limits.clone(), wait.clone());
            running.push(tokio::spawn(async move {
                l.run("t", deadline, move |_| {
                    let _ = w.lock().unwrap().recv();
                    Ok(())
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = limits.run("t", deadline, |_| Ok(())).await;
        assert_eq!(third.unwrap_err().code(), Code::ResourceExhausted);
        release.send(()).unwrap();
        release.send(()).unwrap();
        for r in running {
            r.await.unwrap().unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_past_its_deadline_is_cancelled() {
        let limits = Limits::new(1, 1, Duration::from_secs(5), Metrics::new().unwrap());
        let seen = Arc::new(AtomicBool::new(false));
        let s = seen.clone();
        let r = limits
            .run("t", Instant::now() + Duration::from_millis(50), move |c| {
                while !c.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                s.store(true, Ordering::Relaxed);
                c.check()
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Code::DeadlineExceeded);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            seen.load(Ordering::Relaxed),
            "the work saw the cancellation"
        );
    }
}
