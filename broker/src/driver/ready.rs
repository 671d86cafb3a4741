//! Which connections have something to do: the wakers the core task polls streams with.
//!
//! The core task polls every connection's stream itself, each with that connection's own
//! [`Signal`] as the waker. When the stream becomes readable or writable, tokio (or turmoil)
//! wakes the signal, which puts the connection's id on the shared [`ReadyList`] (once: a
//! flag keeps an id from being listed twice) and wakes the core task. The core task then
//! serves exactly the listed connections, in id order, which is accept order: the list
//! itself fills in whatever order the wakes came, but a turn does not depend on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::core::ConnectionId;

/// The connections woken since the core task last looked, and the core task's waker.
#[derive(Debug, Default)]
pub(crate) struct ReadyList {
    inner: Mutex<Listed>,
}

#[derive(Debug, Default)]
struct Listed {
    ids: Vec<ConnectionId>,
    /// Woken when the first id is listed.
    core: Option<Waker>,
}

impl ReadyList {
    /// Ready once some connection is listed; until then the core task's waker is kept.
    pub fn poll_listed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut listed = self.lock();
        if !listed.ids.is_empty() {
            return Poll::Ready(());
        }
        if !listed
            .core
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            listed.core = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    pub fn is_empty(&self) -> bool {
        self.lock().ids.is_empty()
    }

    /// Moves every listed id into `into` (emptied first), sorted: a turn serves connections
    /// in accept order whatever order their wakes came in.
    pub fn take(&self, into: &mut Vec<ConnectionId>) {
        into.clear();
        std::mem::swap(&mut self.lock().ids, into);
        into.sort_unstable();
    }

    fn push(&self, id: ConnectionId) {
        let waker = {
            let mut listed = self.lock();
            listed.ids.push(id);
            listed.core.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Listed> {
        // Nothing panics while holding the lock; recover the list rather than the broker if
        // that ever changes.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One connection's waker: waking it lists the connection for the next turn.
#[derive(Debug)]
pub(crate) struct Signal {
    id: ConnectionId,
    list: Arc<ReadyList>,
    /// On the list and not yet served: a second wake adds nothing.
    listed: AtomicBool,
}

impl Signal {
    pub fn new(id: ConnectionId, list: Arc<ReadyList>) -> Arc<Signal> {
        Arc::new(Signal {
            id,
            list,
            listed: AtomicBool::new(false),
        })
    }

    /// Lists the connection for the next turn (it has more to do than one turn allows).
    pub fn requeue(self: &Arc<Self>) {
        self.wake_by_ref();
    }

    /// The connection is being served: a wake from now on lists it again.
    pub fn served(&self) {
        self.listed.store(false, Ordering::Release);
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.listed.swap(true, Ordering::AcqRel) {
            self.list.push(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_listed_once_until_served_and_turns_go_in_id_order() {
        let list = Arc::new(ReadyList::default());
        let (three, one) = (
            Signal::new(3, Arc::clone(&list)),
            Signal::new(1, Arc::clone(&list)),
        );
        let (w3, w1) = (
            Waker::from(Arc::clone(&three)),
            Waker::from(Arc::clone(&one)),
        );
        w3.wake_by_ref();
        w1.wake_by_ref();
        w3.wake_by_ref();
        let mut turn = Vec::new();
        list.take(&mut turn);
        assert_eq!(turn, [1, 3]);
        w3.wake_by_ref();
        assert!(list.is_empty(), "3 was not served yet");
        three.served();
        w3.wake_by_ref();
        list.take(&mut turn);
        assert_eq!(turn, [3]);
    }
}
