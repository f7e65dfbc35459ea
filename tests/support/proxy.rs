//! A TCP proxy between the writer and a real database, to cut, stall and restore the link.

use std::net::SocketAddr;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Backend, TestDb};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Bytes flow.
    Pass,
    /// Every connection is closed and new ones are refused (accepted, then closed at once).
    Cut,
    /// Connections stay open but no byte moves.
    Stall,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    link: watch::Sender<Link>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, _) = watch::channel(Link::Pass);
        let links = link.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut state = links.subscribe();
                if *state.borrow_and_update() == Link::Cut {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    pump(inbound, outbound, state).await;
                });
            }
        });
        FaultProxy { addr, link, task }
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    /// The database URL with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"));
        format!(
            "{scheme}://{}{}/{path}",
            user.unwrap_or_default(),
            self.addr
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(mut a: TcpStream, mut b: TcpStream, mut link: watch::Receiver<Link>) {
    let mut from_a = vec![0u8; 16 * 1024];
    let mut from_b = vec![0u8; 16 * 1024];
    loop {
        let current = *link.borrow_and_update();
        match current {
            Link::Cut => return,
            Link::Stall => {
                if link.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Link::Pass => {}
        }
        tokio::select! {
            read = a.read(&mut from_a) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if b.write_all(&from_a[..n]).await.is_err() { return },
            },
            read = b.read(&mut from_b) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if a.write_all(&from_b[..n]).await.is_err() { return },
            },
            changed = link.changed() => if changed.is_err() { return },
        }
    }
}

/// The `host:port` of a database URL.
pub fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port.parse().unwrap()
}

/// Makes the database unreachable for the writer: a proxy cut or stall for PostgreSQL and
/// MariaDB, a held write lock for SQLite.
pub struct Outage {
    proxy: Option<FaultProxy>,
    locker: Option<DatabaseConnection>,
    lock: Option<DatabaseTransaction>,
}

impl Outage {
    /// The outage switch, and the URL the writer must use to be subject to it.
    pub async fn new(t: &TestDb) -> (Outage, String) {
        if t.backend == Backend::Sqlite {
            let locker = t.connect().await;
            let outage = Outage {
                proxy: None,
                locker: Some(locker),
                lock: None,
            };
            return (outage, t.url().to_owned());
        }
        let proxy = FaultProxy::start(upstream(t.url())).await;
        let url = proxy.url(t.url());
        let outage = Outage {
            proxy: Some(proxy),
            locker: None,
            lock: None,
        };
        (outage, url)
    }

    pub async fn set(&mut self, link: Link) {
        if let Some(proxy) = &self.proxy {
            proxy.set(link);
            return;
        }
        match link {
            Link::Pass => {
                if let Some(lock) = self.lock.take() {
                    lock.rollback().await.unwrap();
                }
            }
            Link::Cut | Link::Stall => {
                if self.lock.is_none() {
                    let lock = self.locker.as_ref().unwrap().begin().await.unwrap();
                    lock.execute_unprepared(
                        "INSERT INTO tower_audit_migrations (version, applied_at) VALUES ('lock', 'x')",
                    )
                    .await
                    .unwrap();
                    self.lock = Some(lock);
                }
            }
        }
    }
}

/// A writer connection at `url` whose pooled connections are handed out without a ping, so
/// that a call goes out on a connection the outage has stalled and waits for an answer (with
/// the ping, sqlx's acquire timeout would end the wait before the call: what this stands for
/// is a stall that begins while a call is under way). SQLite keeps its 5 s busy timeout: a held
/// lock makes a write wait that long.
pub async fn stallable_db(t: &TestDb, url: &str) -> DatabaseConnection {
    let mut options = t.options(url);
    options
        .test_before_acquire(false)
        .connect_timeout(std::time::Duration::from_millis(500))
        .acquire_timeout(std::time::Duration::from_millis(800));
    sea_orm::Database::connect(options)
        .await
        .expect("the writer's connection")
}
