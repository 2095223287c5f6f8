//! Yes/no questions to the person at the terminal, asked without blocking the async
//! runtime. One thread reads the terminal for the whole run and hands its lines over; one
//! question is open at a time, and a line typed while none is open (a late answer to a
//! question that timed out) is thrown away, so it can never answer the next question.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

/// Whether a person can be asked: both stdin and stderr are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// How a question ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// y or yes.
    Yes,
    /// Anything else, or the terminal closed.
    No,
    /// Nothing within the time given: taken as no, and the question withdrawn.
    TimedOut,
    /// Another question is open: this one was not asked.
    Busy,
}

/// Lines typed, and the right to ask.
pub struct Questioner {
    lines: Mutex<mpsc::Receiver<String>>,
}

/// Lines the reader may hold before the next question clears them out.
const TYPED_AHEAD: usize = 16;

impl Questioner {
    pub fn new(lines: mpsc::Receiver<String>) -> Self {
        Self { lines: Mutex::new(lines) }
    }

    /// The terminal's questioner; its reader thread starts on first use.
    fn terminal() -> &'static Self {
        static TERMINAL: OnceLock<Questioner> = OnceLock::new();
        TERMINAL.get_or_init(|| {
            let (tx, rx) = mpsc::channel(TYPED_AHEAD);
            let reader = std::thread::Builder::new().name("terminal".into()).spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { return };
                    if tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            });
            if let Err(e) = reader {
                tracing::warn!("cannot read the terminal: {e}");
            }
            Self::new(rx)
        })
    }

    /// Shows `question` (through `show`) and waits up to `timeout` for a line typed after it.
    pub async fn ask(&self, question: &str, timeout: Duration, show: impl Fn(&str)) -> Answer {
        let Ok(mut lines) = self.lines.try_lock() else { return Answer::Busy };
        while lines.try_recv().is_ok() {}
        show(&format!("{question} [y/N] "));
        match tokio::time::timeout(timeout, lines.recv()).await {
            Ok(Some(line)) if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") => Answer::Yes,
            Ok(_) => Answer::No,
            Err(_) => {
                show(&format!("\nno answer within {} s: refused\n", timeout.as_secs()));
                Answer::TimedOut
            }
        }
    }
}

/// Asks `question` on the terminal.
pub async fn confirm(question: &str, timeout: Duration) -> Answer {
    Questioner::terminal()
        .ask(question, timeout, |text| {
            eprint!("{text}");
            let _ = std::io::stderr().flush();
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_late_answer_never_answers_the_next_question() {
        let (typed, lines) = mpsc::channel(TYPED_AHEAD);
        let questioner = Questioner::new(lines);
        assert_eq!(questioner.ask("first?", SHORT, |_| {}).await, Answer::TimedOut);
        // The answer meant for the first question comes in late.
        typed.send("y".into()).await.unwrap();
        assert_eq!(questioner.ask("second?", SHORT, |_| {}).await, Answer::TimedOut);
        typed.send("no".into()).await.unwrap();
        let answer = questioner.ask("third?", Duration::from_secs(5), |_| {});
        let (answer, ()) = tokio::join!(answer, async {
            tokio::time::sleep(SHORT).await;
            typed.send(" Yes ".into()).await.unwrap();
        });
        assert_eq!(answer, Answer::Yes);
    }

    #[tokio::test]
    async fn one_question_at_a_time() {
        let (typed, lines) = mpsc::channel(TYPED_AHEAD);
        let questioner = Questioner::new(lines);
        let first = questioner.ask("first?", Duration::from_secs(5), |_| {});
        let (first, second) = tokio::join!(first, async {
            tokio::time::sleep(SHORT).await;
            let second = questioner.ask("second?", Duration::from_secs(5), |_| {}).await;
            typed.send("n".into()).await.unwrap();
            second
        });
        assert_eq!((first, second), (Answer::No, Answer::Busy));
    }

    #[tokio::test]
    async fn a_closed_terminal_answers_no() {
        let (typed, lines) = mpsc::channel(TYPED_AHEAD);
        drop(typed);
        assert_eq!(Questioner::new(lines).ask("anyone?", Duration::from_secs(5), |_| {}).await, Answer::No);
    }
}
