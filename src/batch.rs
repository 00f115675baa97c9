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
//!
//! A request whose caller stopped waiting while queued (timed out, hung up)
//! is never sent: taking a job into a script call claims its [`Caller`], and
//! a caller who gave up first cannot be claimed. Once claimed, the caller
//! waits for the call's real answer (see `caller`).

use std::{collections::HashMap, future::Future, hash::Hash, sync::Arc};

use fred::error::{Error, ErrorKind};

use crate::{
    caller::{self, Caller, WriteError},
    metrics::Histogram,
};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Jobs waiting beyond this many make callers wait to queue theirs.
const QUEUE: usize = 65_536;

/// Where one request's answer goes.
type Reply<Resp> = oneshot::Sender<Result<Resp, WriteError>>;

struct Job<K, Req, Resp> {
    key: K,
    request: Req,
    caller: Arc<Caller>,
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
        Fut: Future<Output = Result<Vec<Resp>, WriteError>> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(batch_loop(queue, in_flight.max(1), max_batch.max(1), sizes, Arc::new(run)));
        Batcher { jobs }
    }

    /// Queues one request and waits for its answer. The request belongs to
    /// the caller in scope (a fresh one outside a request); dropping this
    /// future before the request was sent gives it up.
    pub async fn call(&self, key: K, request: Req) -> Result<Resp, WriteError> {
        let caller = caller::current().unwrap_or_default();
        let _give_up_when_dropped = GiveUpOnDrop(&caller);
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(Job { key, request, caller: caller.clone(), reply }).await.is_err() {
            return Err(WriteError::NotSent(Error::new(ErrorKind::Canceled, "the batching task has stopped")));
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_) if caller.is_gone() => Err(WriteError::Abandoned),
            // Sent, and the call's task ended without answering (a panic).
            Err(_) => Err(WriteError::Failed(Error::new(ErrorKind::Canceled, "a batched script call was dropped"))),
        }
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
    Fut: Future<Output = Result<Vec<Resp>, WriteError>> + Send + 'static,
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
            // Its caller stopped waiting: it did not happen, and never will.
            if job.reply.is_closed() || !job.caller.send() {
                continue;
            }
            let group = groups.entry(job.key).or_default();
            group.0.push(job.request);
            group.1.push(job.reply);
        }
        if groups.is_empty() {
            continue;
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

/// Gives the caller up when its wait ends before its request was sent
/// (after that, giving up does nothing).
struct GiveUpOnDrop<'a>(&'a Caller);

impl Drop for GiveUpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.give_up();
    }
}

fn answer<Resp>(replies: Vec<Reply<Resp>>, answers: Result<Vec<Resp>, WriteError>) {
    match answers {
        Ok(answers) if answers.len() == replies.len() => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Ok(answers) => {
            let error = WriteError::Failed(Error::new(
                ErrorKind::Parse,
                format!("a batched script answered {} results for {} requests", answers.len(), replies.len()),
            ));
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

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use tokio::sync::{Notify, Semaphore};

    use super::*;

    static SIZES: Histogram = Histogram::sizes();

    /// A batcher over a `run` that records every request it is given (`ran`)
    /// and answers each with itself; a call carrying a request in `held`
    /// waits for a `gate` permit first. `started` is told of every call.
    struct Fake {
        batcher: Batcher<(), u64, u64>,
        ran: Arc<Mutex<Vec<u64>>>,
        gate: Arc<Semaphore>,
        started: Arc<Notify>,
    }

    fn recording(held: &'static [u64]) -> Fake {
        let (ran, gate, started) =
            (Arc::new(Mutex::new(Vec::new())), Arc::new(Semaphore::new(0)), Arc::new(Notify::new()));
        let batcher = {
            let (ran, gate, started) = (ran.clone(), gate.clone(), started.clone());
            Batcher::spawn(1, 64, &SIZES, move |(), requests: Vec<u64>| {
                ran.lock().unwrap().extend(&requests);
                started.notify_one();
                let gate = gate.clone();
                async move {
                    if requests.iter().any(|r| held.contains(r)) {
                        gate.acquire().await.unwrap().forget();
                    }
                    Ok(requests)
                }
            })
        };
        Fake { batcher, ran, gate, started }
    }

    /// Polls `future` once, so its job is queued.
    async fn poll_once<F: Future + Unpin>(future: &mut F) {
        assert!(tokio::time::timeout(Duration::ZERO, future).await.is_err(), "still waiting");
    }

    #[tokio::test]
    async fn a_job_whose_caller_gave_up_or_hung_up_while_queued_is_never_run() {
        let Fake { batcher, ran, gate, started } = recording(&[1]);
        // Request 1 holds the only call slot, so the next ones queue.
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.call((), 1).await }
        });
        started.notified().await;

        let timed_out = Caller::new();
        let mut waiting_2 = Box::pin(caller::scope(timed_out.clone(), batcher.call((), 2)));
        poll_once(&mut waiting_2).await;
        let mut hung_up_3 = Box::pin(batcher.call((), 3));
        poll_once(&mut hung_up_3).await;
        let still_waiting_4 = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.call((), 4).await }
        });
        tokio::task::yield_now().await;

        assert!(timed_out.give_up(), "nothing was sent for request 2 yet");
        drop(waiting_2);
        drop(hung_up_3);
        gate.add_permits(1);

        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(still_waiting_4.await.unwrap().unwrap(), 4);
        assert_eq!(*ran.lock().unwrap(), vec![1, 4], "requests 2 and 3 were never run");
    }

    #[tokio::test]
    async fn a_sent_job_cannot_be_given_up_and_its_caller_gets_the_real_answer() {
        let Fake { batcher, ran, gate, started } = recording(&[7]);
        let caller = Caller::new();
        let waiting = tokio::spawn(caller::scope(caller.clone(), {
            let batcher = batcher.clone();
            async move { batcher.call((), 7).await }
        }));
        started.notified().await;

        assert!(!caller.give_up(), "request 7 is in a script call: too late to give up");
        gate.add_permits(1);
        assert_eq!(waiting.await.unwrap().unwrap(), 7, "the real answer, not a timeout");
        assert_eq!(*ran.lock().unwrap(), vec![7]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_caller_giving_up_and_the_batch_loop_sending_never_both_win() {
        let Fake { batcher, ran, .. } = recording(&[]);
        let mut races = tokio::task::JoinSet::new();
        for request in 0..5_000u64 {
            let batcher = batcher.clone();
            races.spawn(async move {
                let caller = Caller::new();
                let waiting =
                    tokio::spawn(caller::scope(caller.clone(), async move { batcher.call((), request).await }));
                for _ in 0..request % 4 {
                    tokio::task::yield_now().await;
                }
                let gave_up = caller.give_up();
                (request, gave_up, waiting.await.unwrap())
            });
        }
        let answers = races.join_all().await;
        let runs = ran.lock().unwrap().len();
        let ran: std::collections::HashSet<u64> = ran.lock().unwrap().iter().copied().collect();
        let (mut gave_up, mut sent) = (0, 0);
        for (request, won, answer) in answers {
            let did_run = ran.contains(&request);
            if won {
                gave_up += 1;
                assert!(!did_run, "request {request} ran after its caller gave up");
                assert!(matches!(answer, Err(WriteError::Abandoned)), "request {request}: {answer:?}");
            } else {
                sent += 1;
                assert!(did_run, "request {request} was claimed but never ran");
                assert_eq!(answer.unwrap(), request, "a sent request gets its real answer");
            }
        }
        eprintln!("{gave_up} gave up first, {sent} were sent first");
        assert_eq!((runs, ran.len()), (sent, sent), "each sent request ran once");
    }
}
