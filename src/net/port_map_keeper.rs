//! Keeps the listener's port mapped for as long as it listens: maps it, tells what came of
//! it, renews at half the lease, says when the router stops renewing, and removes the
//! mapping on exit. When to renew is `next_renewal`, a pure function of the lease.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::port_map::{self, Mapping, Methods, PortMapError};

/// How soon a failed renewal is tried again.
const RETRY: Duration = Duration::from_secs(30);
/// Renewals never come closer than this, whatever lease the router grants.
const SHORTEST_RENEWAL: Duration = Duration::from_secs(10);

/// What became of the mapping.
#[derive(Debug)]
pub enum Event {
    /// The router forwards the port; how long asking took.
    Mapped { mapping: Mapping, took: Duration },
    /// No router maps ports.
    NotMapped(PortMapError),
    /// A mapping the router no longer renews (it expires at its lease's end).
    Lost(String),
}

/// When to renew a mapping granted `lifetime` ago: at half the lease, or not at all for a
/// lease without end.
pub fn next_renewal(lifetime: Duration) -> Option<Duration> {
    (!lifetime.is_zero()).then(|| (lifetime / 2).max(SHORTEST_RENEWAL))
}

/// The mapping's keeper, running beside the listener.
pub struct PortMapKeeper {
    task: tokio::task::JoinHandle<()>,
    current: Arc<Mutex<Option<Mapping>>>,
}

impl PortMapKeeper {
    /// Starts asking for UDP `port`; `report` hears each event.
    pub fn start(port: u16, methods: Methods, report: impl Fn(Event) + Send + 'static) -> Self {
        let current = Arc::new(Mutex::new(None));
        let held = Arc::clone(&current);
        let task = tokio::spawn(async move {
            let asked = Instant::now();
            let mut mapping = match port_map::map(port, methods).await {
                Ok(mapping) => mapping,
                Err(error) => return report(Event::NotMapped(error)),
            };
            *held.lock().unwrap_or_else(|e| e.into_inner()) = Some(mapping.clone());
            report(Event::Mapped { mapping: mapping.clone(), took: asked.elapsed() });
            let mut granted = Instant::now();
            let mut lost = false;
            while let Some(wait) = next_renewal(mapping.lifetime) {
                tokio::time::sleep(if lost || granted.elapsed() > wait { RETRY } else { wait }).await;
                let before = mapping.external;
                match mapping.renew().await {
                    Ok(()) => {
                        granted = Instant::now();
                        // Back after a loss, or at another address: say where callers reach us now.
                        if lost || mapping.external != before {
                            report(Event::Mapped { mapping: mapping.clone(), took: Duration::ZERO });
                            lost = false;
                        }
                        *held.lock().unwrap_or_else(|e| e.into_inner()) = Some(mapping.clone());
                    }
                    Err(reason) if !lost && granted.elapsed() >= mapping.lifetime => {
                        lost = true;
                        report(Event::Lost(reason));
                    }
                    Err(reason) => tracing::info!("renewing the port mapping: {reason}; trying again"),
                }
            }
        });
        Self { task, current }
    }

    /// Stops asking and renewing (waiting for the task to end, so that nothing renews the
    /// mapping after this), then removes the mapping if there is one: the mapping, and
    /// whether the router removed it.
    pub async fn stop(self) -> Option<(Mapping, Result<(), String>)> {
        self.task.abort();
        let _ = self.task.await;
        let mapping = self.current.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let removed = mapping.clone().release().await;
        Some((mapping, removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_renewed_at_half_and_one_without_end_never() {
        assert_eq!(next_renewal(Duration::from_secs(600)), Some(Duration::from_secs(300)));
        assert_eq!(next_renewal(Duration::from_secs(4)), Some(SHORTEST_RENEWAL));
        assert_eq!(next_renewal(Duration::ZERO), None);
    }
}
