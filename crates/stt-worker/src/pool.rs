//! The inference pool: a few OS threads that own the engine, off the async runtime.
//!
//! Finals and partials wait in separate queues. Threads always take finals first (several at
//! once, as a batch, where the engine batches); partials are served only when no final waits,
//! and their queue is short: when it is full the oldest partial is shed (a newer one of the same
//! utterance is on its way), counted in `dragoman_stt_partials_shed_total`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::engine::{DecodeOptions, EngineError, SpeechEngine, Transcription};
use crate::guards;

type Reply = oneshot::Sender<Result<Transcription, EngineError>>;

struct Job {
    audio: Vec<f32>,
    options: DecodeOptions,
    reply: Reply,
}

#[derive(Default)]
struct Queues {
    finals: VecDeque<Job>,
    partials: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    partial_capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A pool of inference threads sharing one loaded engine.
pub struct InferencePool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool").field("threads", &self.threads.len()).finish()
    }
}

/// The pool has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the inference pool has stopped")]
pub struct PoolClosed;

impl InferencePool {
    /// Starts `threads` inference threads; each takes up to `max_batch` finals at a time.
    pub fn new(engine: Arc<dyn SpeechEngine>, threads: usize, max_batch: usize, partial_capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            partial_capacity: partial_capacity.max(1),
        });
        let threads = (0..threads.max(1))
            .map(|i| {
                let (shared, engine) = (shared.clone(), engine.clone());
                std::thread::Builder::new()
                    .name(format!("stt-inference-{i}"))
                    .spawn(move || work(&shared, engine.as_ref(), max_batch.max(1)))
                    .expect("spawning an inference thread")
            })
            .collect();
        Self { shared, threads }
    }

    /// Transcribes a final utterance (never shed).
    pub async fn transcribe_final(
        &self,
        audio: Vec<f32>,
        options: DecodeOptions,
    ) -> Result<Result<Transcription, EngineError>, PoolClosed> {
        let (reply, answer) = oneshot::channel();
        {
            let mut queues = self.shared.lock();
            if queues.closed {
                return Err(PoolClosed);
            }
            queues.finals.push_back(Job { audio, options, reply });
        }
        self.shared.ready.notify_one();
        answer.await.map_err(|_| PoolClosed)
    }

    /// Queues a partial; the answer never comes if it is shed.
    pub fn transcribe_partial(
        &self,
        audio: Vec<f32>,
        options: DecodeOptions,
    ) -> oneshot::Receiver<Result<Transcription, EngineError>> {
        let (reply, answer) = oneshot::channel();
        {
            let mut queues = self.shared.lock();
            if queues.closed {
                return answer;
            }
            if queues.partials.len() >= self.shared.partial_capacity {
                queues.partials.pop_front();
                metrics::counter!("dragoman_stt_partials_shed_total", "reason" => "busy").increment(1);
            }
            queues.partials.push_back(Job { audio, options, reply });
        }
        self.shared.ready.notify_one();
        answer
    }

    /// Finals waiting for a thread.
    pub fn finals_waiting(&self) -> usize {
        self.shared.lock().finals.len()
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn work(shared: &Shared, engine: &dyn SpeechEngine, max_batch: usize) {
    loop {
        let batch: Vec<Job> = {
            let mut queues = shared.lock();
            loop {
                if !queues.finals.is_empty() {
                    // Batch finals decoded with the same options (same language and prompt).
                    let first = queues.finals.pop_front().expect("checked non-empty");
                    let mut batch = vec![first];
                    while batch.len() < max_batch {
                        let same = queues.finals.front().is_some_and(|j| j.options == batch[0].options);
                        if !same {
                            break;
                        }
                        batch.extend(queues.finals.pop_front());
                    }
                    break batch;
                }
                if let Some(job) = queues.partials.pop_back() {
                    // Newest first: an older partial of the same utterance is stale already.
                    break vec![job];
                }
                if queues.closed {
                    return;
                }
                queues = shared.ready.wait(queues).unwrap_or_else(|p| p.into_inner());
            }
        };
        run_batch(engine, batch);
    }
}

/// Decodes at the first temperature (batched), retries what fails the quality checks at the
/// next temperatures one by one, and applies the hallucination guards.
fn run_batch(engine: &dyn SpeechEngine, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    let options = batch[0].options.clone();
    let temperatures = if options.temperatures.is_empty() { vec![0.0] } else { options.temperatures.clone() };
    let first = DecodeOptions { temperatures: vec![temperatures[0]], ..options.clone() };
    let audio: Vec<&[f32]> = batch.iter().map(|j| j.audio.as_slice()).collect();
    let mut results = engine.transcribe_batch(&audio, &first);
    for (job, result) in batch.iter().zip(results.iter_mut()) {
        for &temperature in &temperatures[1..] {
            match result {
                Ok(r) if guards::acceptable(r, &job.options) => break,
                Err(_) => break,
                Ok(_) => {
                    metrics::counter!("dragoman_stt_fallbacks_total").increment(1);
                    let retry = DecodeOptions { temperatures: vec![temperature], ..job.options.clone() };
                    *result = engine.transcribe(&job.audio, &retry);
                }
            }
        }
    }
    metrics::histogram!("dragoman_stt_inference_seconds").record(started.elapsed().as_secs_f64());
    for (job, result) in batch.into_iter().zip(results) {
        let options = job.options;
        let _ = job.reply.send(result.map(|r| guards::clean(r, &options)));
    }
}
