//! Yes/no questions to the person at the terminal, asked without blocking the async
//! runtime: the read happens on a detached thread, so an unanswered question never keeps
//! the program from exiting.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// Whether a person can be asked: both stdin and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question`; `true` only for an answer of y or yes within `timeout`.
pub async fn confirm(question: &str, timeout: Duration) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let question = format!("{question} [y/N] ");
    let spawned = std::thread::Builder::new().name("prompt".into()).spawn(move || {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let answer = std::io::stdin().lock().read_line(&mut line).ok().map(|_| line);
        let _ = tx.send(answer);
    });
    if spawned.is_err() {
        return false;
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Some(line))) => matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        Ok(_) => false,
        Err(_) => {
            eprintln!("\nno answer within {} s: refused", timeout.as_secs());
            false
        }
    }
}
