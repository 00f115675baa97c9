//! Each process's view of its rooms, at most `FRESH` old. A poll reads it with
//! no lock and no shared counter: every worker thread keeps its own copy of
//! the process's view, dropped when that view ages out or is forgotten.

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use super::FRESH;
use crate::{keys::Room, scripts::QueueState};

/// The process's views of its rooms (one per `Queues`).
pub struct Views {
    id: u64,
    /// Bumped when a view is forgotten: threads' copies older than it go.
    generation: AtomicU64,
    shared: Mutex<HashMap<Room, View>>,
}

#[derive(Clone)]
struct View {
    at: Instant,
    state: Option<Arc<QueueState>>,
}

impl View {
    fn fresh(&self) -> bool {
        self.at.elapsed() < FRESH
    }
}

/// Most rooms a map holds before aged views are swept.
const MOST_ROOMS: usize = 10_000;

thread_local! {
    /// (views' id, room) -> (generation copied at, view).
    static COPIES: RefCell<HashMap<(u64, Room), (u64, View)>> = RefCell::default();
}

impl Views {
    pub fn new() -> Views {
        static IDS: AtomicU64 = AtomicU64::new(0);
        Views { id: IDS.fetch_add(1, Ordering::Relaxed), generation: AtomicU64::new(0), shared: Mutex::default() }
    }

    /// The room's view if fresh (None inside: no room); None: none fresh.
    pub fn get(&self, room: Room) -> Option<Option<Arc<QueueState>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let copy = COPIES.with(|copies| {
            let copies = copies.borrow();
            let (at, view) = copies.get(&(self.id, room))?;
            (*at == generation && view.fresh()).then(|| view.state.clone())
        });
        if copy.is_some() {
            return copy;
        }
        let view = self.lock().get(&room).filter(|v| v.fresh()).cloned()?;
        // The thread's own copy: its reference count is this thread's alone.
        let copy = View { at: view.at, state: view.state.as_deref().map(|s| Arc::new(s.clone())) };
        COPIES.with(|copies| {
            let mut copies = copies.borrow_mut();
            if copies.len() > MOST_ROOMS {
                copies.retain(|_, (_, v)| v.fresh());
            }
            copies.insert((self.id, room), (generation, copy));
        });
        Some(view.state)
    }

    /// Records the room's state as read just now.
    pub fn put(&self, room: Room, state: Option<Arc<QueueState>>) {
        let mut shared = self.lock();
        if shared.len() > MOST_ROOMS {
            shared.retain(|_, v| v.fresh());
        }
        shared.insert(room, View { at: Instant::now(), state });
    }

    /// Drops the room's view: the next poll reads the room again.
    pub fn forget(&self, room: Room) {
        self.lock().remove(&room);
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Room, View>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}
