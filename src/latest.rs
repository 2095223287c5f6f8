//! `Latest<T>`: a capacity-one hand-off between threads where the newest item wins.
//!
//! A slow consumer skips items instead of building a queue, so latency never creeps.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A slot holding at most one item; `put` replaces whatever the consumer has not taken.
#[derive(Debug)]
pub struct Latest<T> {
    item: Mutex<Option<T>>,
    ready: Condvar,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self { item: Mutex::new(None), ready: Condvar::new() }
    }
}

impl<T> Latest<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `item`, dropping any item not yet taken.
    pub fn put(&self, item: T) {
        *self.item.lock().unwrap_or_else(|e| e.into_inner()) = Some(item);
        self.ready.notify_one();
    }

    /// Takes the item if there is one, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.item.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Waits up to `timeout` for an item; `None` on timeout.
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let item = self.item.lock().unwrap_or_else(|e| e.into_inner());
        let (mut item, _) =
            self.ready.wait_timeout_while(item, timeout, |i| i.is_none()).unwrap_or_else(|e| e.into_inner());
        item.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn newest_item_wins() {
        let slot = Latest::new();
        slot.put(1);
        slot.put(2);
        slot.put(3);
        assert_eq!(slot.try_take(), Some(3));
        assert_eq!(slot.try_take(), None);
    }

    #[test]
    fn take_waits_for_a_producer_and_times_out_without_one() {
        let slot = Arc::new(Latest::new());
        let producer = Arc::clone(&slot);
        let handle = std::thread::spawn(move || producer.put(7));
        assert_eq!(slot.take_timeout(Duration::from_secs(5)), Some(7));
        handle.join().unwrap();
        assert_eq!(slot.take_timeout(Duration::from_millis(20)), None);
    }
}
