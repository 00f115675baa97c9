//! Group commit for hot-path scripts: concurrent requests for the same
//! campaign or sale are handed to one script call together.
//!
//! A request queues its job and waits for its own answer. One task takes jobs
//! off the queue: whenever fewer than `in_flight` script calls are running, it
//! takes everything queued (up to `max_batch`), groups it by key (a campaign
//! or a sale: one hash tag, one script call) and starts the calls. Under light
//! load every call carries one request, so latency stays one round trip; under
//! a spike calls carry many, and Redis parses, runs and answers once per call
//! instead of once per request. Inside a call the script handles requests in
//! arrival order, each atomically as before (the whole call is atomic).
//!
//! A call that fails answers every request in it with the same error.

use std::{collections::HashMap, future::Future, hash::Hash, sync::Arc};

use fred::error::{Error, ErrorKind};

use crate::metrics::Histogram;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Jobs waiting beyond this many make callers wait to queue theirs.
const QUEUE: usize = 65_536;

/// Where one request's answer goes.
type Reply<Resp> = oneshot::Sender<Result<Resp, Error>>;

struct Job<K, Req, Resp> {
    key: K,
    request: Req,
    reply: Reply<Resp>,
}

/// The queue side; cloning is cheap. The batching task ends when every
/// clone is dropped.
pub struct Batcher<K, Req, Resp> {
    jobs: mpsc::Sender<Job<K, Req, Resp>>,
}

impl<K, Req, Resp> Clone for Batcher<K, Req, Resp> {
    fn clone(&self) -> Self {
        Batcher { jobs: self.jobs.clone() }
    }
}

impl<K: Hash + Eq + Send + 'static, Req: Send + 'static, Resp: Send + 'static> Batcher<K, Req, Resp> {
    /// Starts the batching task. `run(key, requests)` makes one script call and
    /// answers one response per request, in order. `sizes` records how many
    /// requests each call carried.
    pub fn spawn<F, Fut>(in_flight: usize, max_batch: usize, sizes: &'static Histogram, run: F) -> Self
    where
        F: Fn(K, Vec<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Resp>, Error>> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(batch_loop(queue, in_flight.max(1), max_batch.max(1), sizes, Arc::new(run)));
        Batcher { jobs }
    }

    /// Queues one request and waits for its answer.
    pub async fn call(&self, key: K, request: Req) -> Result<Resp, Error> {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { key, request, reply }).await.is_err() {
            return Err(Error::new(ErrorKind::Canceled, "the batching task has stopped"));
        }
        answer.await.unwrap_or_else(|_| Err(Error::new(ErrorKind::Canceled, "a batched script call was dropped")))
    }
}

async fn batch_loop<K, Req, Resp, F, Fut>(
    mut queue: mpsc::Receiver<Job<K, Req, Resp>>,
    in_flight: usize,
    max_batch: usize,
    sizes: &'static Histogram,
    run: Arc<F>,
) where
    K: Hash + Eq + Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(K, Vec<Req>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Resp>, Error>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    let mut taken = Vec::with_capacity(max_batch);
    loop {
        // A free slot first, then whatever queued meanwhile goes in one round.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        if queue.recv_many(&mut taken, max_batch).await == 0 {
            return;
        }
        let mut groups: HashMap<K, (Vec<Req>, Vec<Reply<Resp>>)> = HashMap::new();
        for job in taken.drain(..) {
            let group = groups.entry(job.key).or_default();
            group.0.push(job.request);
            group.1.push(job.reply);
        }
        let run = run.clone();
        tokio::spawn(async move {
            let calls = groups.into_iter().map(|(key, (requests, replies))| {
                sizes.observe_size(requests.len() as u64);
                let answers = run(key, requests);
                async move { answer(replies, answers.await) }
            });
            futures_join_all(calls).await;
            drop(slot);
        });
    }
}

fn answer<Resp>(replies: Vec<Reply<Resp>>, answers: Result<Vec<Resp>, Error>) {
    match answers {
        Ok(answers) if answers.len() == replies.len() => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            let error = Error::new(
                ErrorKind::Parse,
                format!("a batched script answered {} results for {} requests", answers.len(), replies.len()),
            );
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Runs the calls of one round concurrently (fred pipelines them).
async fn futures_join_all<I: IntoIterator<Item = Fut>, Fut: Future<Output = ()> + Send + 'static>(calls: I) {
    let mut calls = calls.into_iter();
    // The common case, one group: no extra task.
    let Some(first) = calls.next() else { return };
    let rest: Vec<_> = calls.map(tokio::spawn).collect();
    first.await;
    for task in rest {
        let _ = task.await;
    }
}
