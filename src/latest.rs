//! `Latest<T>`: a capacity-one hand-off between threads where the newest item wins.
//!
//! A slow consumer skips items instead of building a queue, so latency never creeps.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A slot holding at most one item; `put` replaces whatever the consumer has not taken.
#[derive(Debug)]
pub struct Latest<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct SlotState<T> {
    item: Option<T>,
    closed: bool,
    replaced: u64,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self { state: Mutex::new(SlotState { item: None, closed: false, replaced: 0 }), ready: Condvar::new() }
    }
}

impl<T> Latest<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `item`, dropping any item not yet taken. Returns `true` if one was dropped.
    pub fn put(&self, item: T) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = state.item.replace(item).is_some();
        if dropped {
            state.replaced += 1;
        }
        drop(state);
        self.ready.notify_one();
        dropped
    }

    /// Takes the item if there is one, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).item.take()
    }

    /// Waits up to `timeout` for an item. `None` on timeout or once closed and empty.
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| s.item.is_none() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        state.item.take()
    }

    /// Wakes every waiter; later `take_timeout` calls return at once when empty.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// How many items were overwritten before the consumer took them.
    pub fn replaced(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newest_item_wins_and_drops_are_counted() {
        let slot = Latest::new();
        assert!(!slot.put(1));
        assert!(slot.put(2));
        assert!(slot.put(3));
        assert_eq!(slot.try_take(), Some(3));
        assert_eq!(slot.try_take(), None);
        assert_eq!(slot.replaced(), 2);
    }

    #[test]
    fn take_waits_for_a_producer_and_close_wakes_it() {
        let slot = Arc::new(Latest::new());
        let producer = Arc::clone(&slot);
        let handle = std::thread::spawn(move || producer.put(7));
        assert_eq!(slot.take_timeout(Duration::from_secs(5)), Some(7));
        handle.join().unwrap();

        let closer = Arc::clone(&slot);
        let handle = std::thread::spawn(move || closer.close());
        assert_eq!(slot.take_timeout(Duration::from_secs(5)), None::<i32>);
        handle.join().unwrap();
        assert!(slot.is_closed());
    }
}
