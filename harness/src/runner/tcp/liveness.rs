//! Whether the broker under test is still there: a broker that dies mid-run ends the run
//! within seconds, with one reason naming it, instead of every remaining scenario running
//! out its time against a closed port.
//!
//! Nothing is probed while all is well. A client whose connect fails, or whose connection
//! the broker closes, makes the broker *suspect*; a watcher thread (one per suite run) then
//! checks that every instance still answers a CONNECT with a CONNACK (any code: a refusal is
//! an answer). When one fails two checks in a row, the broker is *lost*: scenarios still
//! running stop at once, and the rest are not started.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lastwill_broker::codec::{Connect, Packet};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::Endpoint;
use super::capabilities::own_client_id;
use super::connection::Stream;
use crate::io_error;

/// How long an instance has to answer a check's CONNECT.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);

/// How long after a failed check the broker is checked again.
const RECHECK_AFTER: Duration = Duration::from_millis(250);

/// How often the watcher looks at whether the run has finished, while nothing is suspect.
const IDLE_TICK: Duration = Duration::from_millis(200);

/// The least time between two checks of a broker that answered: scenarios whose broker
/// closes connections on purpose make it suspect often.
const CHECK_GAP: Duration = Duration::from_secs(1);

/// What a run knows about whether its broker is still there.
#[derive(Debug)]
pub struct Liveness {
    suspect: Mutex<bool>,
    wake: Condvar,
    /// `broker: restart` steps in progress: the broker is down on purpose.
    restarting: AtomicUsize,
    lost: watch::Sender<Option<String>>,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            suspect: Mutex::new(false),
            wake: Condvar::new(),
            restarting: AtomicUsize::new(0),
            lost: watch::Sender::new(None),
        }
    }
}

impl Liveness {
    /// Something a client saw suggests the broker is gone.
    pub fn suspect(&self) {
        *self.suspect.lock().expect("liveness lock") = true;
        self.wake.notify_all();
    }

    /// Why the broker is lost, once it is.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Completes when the broker is lost, with the reason.
    pub async fn until_lost(&self) -> String {
        let mut lost = self.lost.subscribe();
        match lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // the sender lives as long as `self`
            Err(_) => std::future::pending().await,
        }
    }

    /// Runs `restart` with the broker allowed to be down meanwhile.
    pub async fn restarting<T>(&self, restart: impl Future<Output = T>) -> T {
        self.restarting.fetch_add(1, Ordering::SeqCst);
        let result = restart.await;
        self.restarting.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Checks `instances` whenever the broker is suspect, until `finished` is set or an
    /// instance does not answer (the broker is then lost). Blocks: run it on its own thread.
    pub fn watch(&self, instances: &[Endpoint], finished: &AtomicBool) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        while !finished.load(Ordering::SeqCst) && self.lost().is_none() {
            let suspect = self.suspect.lock().expect("liveness lock");
            let (mut suspect, _) = self
                .wake
                .wait_timeout_while(suspect, IDLE_TICK, |suspect| !*suspect)
                .expect("liveness lock");
            if !std::mem::take(&mut *suspect) {
                continue;
            }
            drop(suspect);
            if self.restarting.load(Ordering::SeqCst) > 0 {
                continue;
            }
            for instance in instances {
                // a broker that fails a check twice in a row is gone (the first may meet it
                // as it dies, or in a passing hiccup); the second failure is the reason given
                let answers = || runtime.block_on(instance.answers());
                if answers().is_err() {
                    std::thread::sleep(RECHECK_AFTER);
                    if let Err(why) = answers() {
                        self.lost
                            .send_replace(Some(format!("{instance:?} stopped answering: {why}")));
                        return;
                    }
                }
            }
            let next_check = std::time::Instant::now() + CHECK_GAP;
            while !finished.load(Ordering::SeqCst) && std::time::Instant::now() < next_check {
                std::thread::sleep(IDLE_TICK);
            }
        }
    }
}

impl Endpoint {
    /// Whether the broker answers a CONNECT with a CONNACK (of any code) within
    /// [`ANSWER_LIMIT`]; if not, why, in words.
    async fn answers(&self) -> Result<(), String> {
        let connect = Connect::new(self.own_protocol, own_client_id("alive"));
        let mut link = tokio::time::timeout(ANSWER_LIMIT, self.connect(connect))
            .await
            .map_err(|_| format!("no connection within {}s", ANSWER_LIMIT.as_secs()))?
            .map_err(|e| format!("cannot connect: {}", io_error::describe(&e)))?;
        match link.recv_within(ANSWER_LIMIT).await {
            Ok(Some(Packet::ConnAck(_))) => {
                link.goodbye(&[]).await;
                Ok(())
            }
            Ok(Some(other)) => Err(format!("it answered CONNECT with {}", other.name())),
            Ok(None) => Err(format!("no CONNACK within {}s", ANSWER_LIMIT.as_secs())),
            Err(_) => Err("it closed the connection without a CONNACK".into()),
        }
    }
}

/// A client's connection that tells [`Liveness`] when the broker closes it or it fails.
pub(super) struct Watched {
    pub(super) stream: Stream,
    pub(super) liveness: Arc<Liveness>,
}

impl Watched {
    fn noticed<T>(&self, result: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(_)) = result {
            self.liveness.suspect();
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.noticed(&result);
        let end_of_stream = matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() == before
            && buf.remaining() > 0;
        if end_of_stream {
            this.liveness.suspect();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.noticed(&result);
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
