//! Graceful shutdown: one cancellation token and one task tracker per process.
//!
//! Order on SIGINT/SIGTERM: stop taking work (the token is cancelled; loops stop pulling new
//! messages), finish in-flight work (tracked tasks), drain the bus, flush telemetry — all within
//! the configured grace period.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl Shutdown {
    pub fn new(grace: Duration) -> Self {
        Self { token: CancellationToken::new(), tracker: TaskTracker::new(), grace }
    }

    /// Asks everything to stop taking work.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been asked for.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        self.token.clone().cancelled_owned()
    }

    /// A token that is cancelled with this shutdown (or earlier, if the child is cancelled).
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Runs `task` as in-flight work that shutdown waits for.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Waits for tracked tasks to finish, at most the grace period. Returns whether they all did.
    pub async fn wait_for_tasks(&self) -> bool {
        self.tracker.close();
        tokio::time::timeout(self.grace, self.tracker.wait()).await.is_ok()
    }

    /// Triggers shutdown on SIGINT or SIGTERM.
    pub async fn on_signal(&self) {
        wait_for_signal().await;
        tracing::info!(grace_ms = self.grace.as_millis() as u64, "shutdown requested");
        self.trigger();
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                futures::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_in_flight_work_within_grace() {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let stop = shutdown.triggered();
        shutdown.spawn(async move {
            stop.await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        shutdown.trigger();
        assert!(shutdown.wait_for_tasks().await);
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_grace() {
        let shutdown = Shutdown::new(Duration::from_millis(100));
        shutdown.spawn(futures::future::pending::<()>());
        shutdown.trigger();
        assert!(!shutdown.wait_for_tasks().await);
    }
}
