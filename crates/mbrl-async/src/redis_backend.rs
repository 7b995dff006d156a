//! The `redis` backend: the servers of [`crate::servers`] in a Redis server, so workers can be
//! separate processes on any machine that reaches it (`mbrl-cli worker`).
//!
//! Keys are namespaced by run id, `mbrl:<run>:<name>`:
//! - `policy`, `model`: hashes holding `version` and `blob`, written together in one
//!   MULTI/EXEC, so a reader that sees a version gets its blob;
//! - `rollouts`: a stream (XADD); each reader is a consumer group (XREADGROUP, then XACK). A
//!   reader's entries left pending by a crashed instance are reclaimed first (XAUTOCLAIM), so
//!   each entry is taken exactly once per reader;
//! - `control`: `budget`, `reserved` (taken by a Lua script, atomically) and `stop`;
//!   `reports`: the workers' latest values; `meta`: the wire format and the run's dimensions,
//!   written by the coordinator and checked by every worker.
//!
//! Credentials go in the URL (`redis://user:password@host:port/db`; `rediss://` needs the
//! `tls` cargo feature); messages show it with the password masked. A lost connection is
//! retried with exponential backoff for `async.reconnect_seconds`, then reported with the
//! server's address.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mbrl_core::{Error, Result};
use redis::{Client, Connection, RedisError, RedisResult, Script};

use crate::redis_tls::{self, TlsFiles};
use crate::servers::{Control, ParameterServer, RolloutStream, Servers, Versioned};

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take (a blocking read blocks for less: [`MAX_BLOCK`]).
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a blocking stream read waits on the server.
const MAX_BLOCK: Duration = Duration::from_secs(5);

/// The wire format's name; a worker built for another format refuses to join.
pub const FORMAT: &str = "mbrl-async/1";

/// `url` with its password replaced by `***`.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_string(),
    }
}

/// Whether `e` means the connection is gone (worth a reconnect), not a refused command.
fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// Whether `e` is the server rejecting the credentials.
fn is_auth_error(e: &RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// Whether `e` is a TLS handshake the two sides could not agree on (an untrusted certificate,
/// a missing client certificate): a setting to fix, not worth a reconnect. rustls reports these
/// as I/O errors whose text starts with its error's description.
fn is_tls_rejection(e: &RedisError) -> bool {
    let text = e.to_string();
    [
        "invalid peer certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ]
    .iter()
    .any(|cause| text.contains(cause))
}

/// One connection to the server, reopened with backoff when it drops.
struct Link {
    client: Client,
    url: String,
    patience: Duration,
    connection: Mutex<Option<Connection>>,
}

impl Link {
    fn open(url: &str, tls: &TlsFiles, patience: Duration) -> Result<Self> {
        let client = redis_tls::client(url, tls)?;
        Ok(Self {
            client,
            url: masked(url),
            patience,
            connection: Mutex::new(None),
        })
    }

    /// Runs `command` (described by `what` in errors), reconnecting on connection errors.
    fn run<T>(&self, what: &str, command: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let deadline = Instant::now() + self.patience;
        let mut backoff = Duration::from_millis(50);
        loop {
            let outcome = (|| {
                // A worker that panicked mid-command leaves a connection in an unknown state.
                let mut slot = self.connection.lock().unwrap_or_else(|poisoned| {
                    let mut guard = poisoned.into_inner();
                    *guard = None;
                    guard
                });
                if slot.is_none() {
                    let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
                    connection.set_read_timeout(Some(IO_TIMEOUT))?;
                    connection.set_write_timeout(Some(IO_TIMEOUT))?;
                    *slot = Some(connection);
                }
                command(slot.as_mut().expect("opened above"))
            })();
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if is_auth_error(&e) => return Err(self.rejected(&e)),
                Err(e) if is_tls_rejection(&e) => {
                    return Err(Error::InvalidArgument(format!(
                        "the TLS handshake with the Redis server at {} failed while {what}: {e} \
                         (see async.redis_tls_ca_file, async.redis_tls_cert_file and \
                         async.redis_tls_key_file)",
                        self.url
                    )))
                }
                Err(e) if is_connection_error(&e) => {
                    if let Ok(mut slot) = self.connection.lock() {
                        *slot = None;
                    }
                    if Instant::now() + backoff > deadline {
                        return Err(Error::InvalidArgument(format!(
                            "lost the connection to the Redis server at {} while {what} (retried \
                             for {:.0} s): {e}",
                            self.url,
                            self.patience.as_secs_f64()
                        )));
                    }
                    tracing::warn!(
                        "Redis at {} unreachable while {what}; retrying: {e}",
                        self.url
                    );
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(Error::InvalidArgument(format!(
                        "the Redis server at {} refused {what}: {e}",
                        self.url
                    )))
                }
            }
        }
    }

    fn rejected(&self, e: &RedisError) -> Error {
        Error::InvalidArgument(format!(
            "the Redis server at {} rejected the credentials of the URL: {e}",
            self.url
        ))
    }
}

/// The run's key for `name`.
fn key(run: &str, name: &str) -> String {
    format!("mbrl:{run}:{name}")
}

/// A parameter server in a Redis hash.
struct RedisParameters {
    link: Arc<Link>,
    key: String,
}

impl ParameterServer for RedisParameters {
    fn push(&self, bytes: Vec<u8>) -> Result<u64> {
        let what = format!("pushing {} ({} bytes)", self.key, bytes.len());
        let (version,): (u64,) = self.link.run(&what, |c| {
            redis::pipe()
                .atomic()
                .hincr(&self.key, "version", 1)
                .hset(&self.key, "blob", bytes.as_slice())
                .ignore()
                .query(c)
        })?;
        Ok(version)
    }

    fn pull_newer(&self, have: u64) -> Result<Option<Versioned>> {
        if self.version()? <= have {
            return Ok(None);
        }
        let what = format!("pulling {}", self.key);
        let (version, blob): (Option<u64>, Option<Vec<u8>>) = self.link.run(&what, |c| {
            redis::cmd("HMGET")
                .arg(&self.key)
                .arg("version")
                .arg("blob")
                .query(c)
        })?;
        Ok(match (version, blob) {
            (Some(version), Some(blob)) if version > have => Some(Versioned {
                version,
                bytes: Arc::new(blob),
            }),
            _ => None,
        })
    }

    fn version(&self) -> Result<u64> {
        let what = format!("reading the version of {}", self.key);
        let version: Option<u64> = self.link.run(&what, |c| {
            redis::cmd("HGET").arg(&self.key).arg("version").query(c)
        })?;
        Ok(version.unwrap_or(0))
    }
}

/// One stream entry: its id and field-value pairs.
type Entry = (String, Vec<Vec<u8>>);

/// The `d` field of a stream entry.
fn payload(entry: Entry) -> Option<Arc<Vec<u8>>> {
    let mut fields = entry.1.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if name == b"d" {
            return Some(Arc::new(value));
        }
    }
    None
}

/// A reply value as text, if it is one.
fn text(value: Option<&redis::Value>) -> Option<String> {
    value.and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
}

/// The rollout stream in a Redis stream with one consumer group per reader.
struct RedisStream {
    link: Arc<Link>,
    key: String,
}

impl RedisStream {
    /// Creates `reader`'s group (reading from the stream's start) unless it exists.
    fn ensure_group(&self, reader: &str) -> Result<()> {
        let what = format!("creating the reader group {reader} of {}", self.key);
        self.link.run(&what, |c| {
            let created: RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&self.key)
                .arg(reader)
                .arg("0")
                .arg("MKSTREAM")
                .query(c);
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        })
    }

    /// Acknowledges `ids` for `reader`.
    fn ack(&self, reader: &str, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let what = format!("acknowledging {} entries of {}", ids.len(), self.key);
        self.link.run(&what, |c| {
            redis::cmd("XACK")
                .arg(&self.key)
                .arg(reader)
                .arg(ids)
                .query::<u64>(c)
                .map(|_| ())
        })
    }
}

impl RolloutStream for RedisStream {
    fn push(&self, bytes: Vec<u8>) -> Result<()> {
        let what = format!("pushing a rollout ({} bytes) to {}", bytes.len(), self.key);
        self.link.run(&what, |c| {
            redis::cmd("XADD")
                .arg(&self.key)
                .arg("*")
                .arg("d")
                .arg(bytes.as_slice())
                .query::<String>(c)
                .map(|_| ())
        })
    }

    fn take_new(&self, reader: &str, wait: Duration) -> Result<Vec<Arc<Vec<u8>>>> {
        self.ensure_group(reader)?;
        let consumer = format!("{reader}-consumer");
        // Entries a crashed instance of this reader was given but never acknowledged.
        let what = format!("reclaiming pending entries of {}", self.key);
        let (_, mut entries, _): (String, Vec<Entry>, Vec<String>) = self.link.run(&what, |c| {
            redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(reader)
                .arg(&consumer)
                .arg(0)
                .arg("0-0")
                .query(c)
        })?;
        if entries.is_empty() {
            let block = wait.min(MAX_BLOCK).as_millis() as u64;
            let what = format!("reading {}", self.key);
            let reply: Option<Vec<(String, Vec<Entry>)>> = self.link.run(&what, |c| {
                let mut command = redis::cmd("XREADGROUP");
                command.arg("GROUP").arg(reader).arg(&consumer);
                if block > 0 {
                    command.arg("BLOCK").arg(block);
                }
                command.arg("STREAMS").arg(&self.key).arg(">").query(c)
            })?;
            entries = reply.into_iter().flatten().flat_map(|(_, e)| e).collect();
        }
        let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        let payloads = entries.into_iter().filter_map(payload).collect();
        self.ack(reader, &ids)?;
        Ok(payloads)
    }

    fn taken(&self, reader: &str) -> Result<Vec<Arc<Vec<u8>>>> {
        self.ensure_group(reader)?;
        let what = format!("reading the reader groups of {}", self.key);
        let groups: Vec<HashMap<String, redis::Value>> = self.link.run(&what, |c| {
            redis::cmd("XINFO").arg("GROUPS").arg(&self.key).query(c)
        })?;
        let last = groups
            .iter()
            .find(|g| text(g.get("name")).as_deref() == Some(reader))
            .and_then(|g| text(g.get("last-delivered-id")))
            .unwrap_or_else(|| "0-0".into());
        if last == "0-0" {
            return Ok(Vec::new());
        }
        let what = format!("reading the history of {}", self.key);
        let pending: Vec<(String, String, u64, u64)> = self.link.run(&what, |c| {
            redis::cmd("XPENDING")
                .arg(&self.key)
                .arg(reader)
                .arg("-")
                .arg("+")
                .arg(1_000_000)
                .query(c)
        })?;
        let history: Vec<Entry> = self.link.run(&what, |c| {
            redis::cmd("XRANGE")
                .arg(&self.key)
                .arg("-")
                .arg(&last)
                .query(c)
        })?;
        Ok(history
            .into_iter()
            .filter(|(id, _)| !pending.iter().any(|p| &p.0 == id))
            .filter_map(payload)
            .collect())
    }
}

/// The run's control in Redis hashes.
struct RedisControl {
    link: Arc<Link>,
    control: String,
    reports: String,
    reserve: Script,
}

impl Control for RedisControl {
    fn add_budget(&self, rollouts: u64) -> Result<()> {
        self.link.run("raising the rollout budget", |c| {
            redis::cmd("HINCRBY")
                .arg(&self.control)
                .arg("budget")
                .arg(rollouts)
                .query::<u64>(c)
                .map(|_| ())
        })
    }

    fn reserve_rollout(&self) -> Result<bool> {
        let granted: u64 = self.link.run("reserving a rollout", |c| {
            self.reserve.key(&self.control).invoke(c)
        })?;
        Ok(granted == 1)
    }

    fn request_stop(&self) -> Result<()> {
        self.link.run("requesting the stop", |c| {
            redis::cmd("HSET")
                .arg(&self.control)
                .arg("stop")
                .arg(1)
                .query::<u64>(c)
                .map(|_| ())
        })
    }

    fn stop_requested(&self) -> Result<bool> {
        let stop: Option<u64> = self.link.run("reading the stop flag", |c| {
            redis::cmd("HGET").arg(&self.control).arg("stop").query(c)
        })?;
        Ok(stop == Some(1))
    }

    fn report(&self, key: &str, value: f64) -> Result<()> {
        self.link.run("publishing a report", |c| {
            redis::cmd("HSET")
                .arg(&self.reports)
                .arg(key)
                .arg(value.to_string())
                .query::<u64>(c)
                .map(|_| ())
        })
    }

    fn reports(&self) -> Result<BTreeMap<String, f64>> {
        let all: HashMap<String, String> = self.link.run("reading the reports", |c| {
            redis::cmd("HGETALL").arg(&self.reports).query(c)
        })?;
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
            .collect())
    }
}

/// Takes one rollout of the budget when `reserved < budget`.
const RESERVE_SCRIPT: &str = r"
local budget = tonumber(redis.call('HGET', KEYS[1], 'budget') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if reserved < budget then
  redis.call('HINCRBY', KEYS[1], 'reserved', 1)
  return 1
end
return 0
";

/// What the coordinator records about a run for its workers to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMeta {
    /// The registry name of the algorithm.
    pub algo: String,
    /// Observation width.
    pub obs_dim: usize,
    /// Action width.
    pub act_dim: usize,
}

/// A run's servers on the Redis server at `url`.
pub struct RedisRun {
    link: Arc<Link>,
    run: String,
}

impl RedisRun {
    /// Connects (checking the server answers and accepts the credentials); `patience` bounds
    /// every reconnect. A `rediss://` server's certificate is checked against the web PKI's
    /// roots; [`RedisRun::connect_with_tls`] takes a private CA and a client certificate.
    pub fn connect(url: &str, run: &str, patience: Duration) -> Result<Self> {
        Self::connect_with_tls(url, &TlsFiles::default(), run, patience)
    }

    /// [`RedisRun::connect`] with the TLS files of a `rediss://` server.
    pub fn connect_with_tls(
        url: &str,
        tls: &TlsFiles,
        run: &str,
        patience: Duration,
    ) -> Result<Self> {
        if run.is_empty() || run.contains(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!(
                "async.run_id must be a non-empty word, got `{run}`"
            )));
        }
        let link = Arc::new(Link::open(url, tls, patience)?);
        link.run("checking the connection", |c| {
            redis::cmd("PING").query::<String>(c)
        })?;
        Ok(Self {
            link,
            run: run.to_string(),
        })
    }

    /// The coordinator's start of a fresh session: forgets the run's keys, then records `meta`.
    pub fn create(&self, meta: &RunMeta) -> Result<()> {
        let names = ["policy", "model", "rollouts", "control", "reports", "meta"];
        let keys: Vec<String> = names.iter().map(|n| key(&self.run, n)).collect();
        let meta_key = key(&self.run, "meta");
        self.link.run("creating the run", |c| {
            redis::pipe()
                .atomic()
                .del(&keys)
                .ignore()
                .hset_multiple(
                    &meta_key,
                    &[
                        ("format", FORMAT.to_string()),
                        ("algo", meta.algo.clone()),
                        ("obs_dim", meta.obs_dim.to_string()),
                        ("act_dim", meta.act_dim.to_string()),
                    ],
                )
                .ignore()
                .query::<()>(c)
        })
    }

    /// A worker's check that the run exists, is live and matches it: waits up to the patience
    /// for the coordinator to create it (a run whose last session ended, with its stop flag
    /// still set, counts as not created yet).
    pub fn join(&self, expected: &RunMeta) -> Result<()> {
        let meta_key = key(&self.run, "meta");
        let control_key = key(&self.run, "control");
        let deadline = Instant::now() + self.link.patience;
        let found: HashMap<String, String> = loop {
            let (found, stop): (HashMap<String, String>, Option<u64>) =
                self.link.run("reading the run's metadata", |c| {
                    redis::pipe()
                        .hgetall(&meta_key)
                        .hget(&control_key, "stop")
                        .query(c)
                })?;
            if !found.is_empty() && stop != Some(1) {
                break found;
            }
            if Instant::now() > deadline {
                let state = if found.is_empty() {
                    "no run"
                } else {
                    "no live session of run"
                };
                return Err(Error::InvalidArgument(format!(
                    "{state} `{}` on the Redis server at {} (waited {:.0} s): start `mbrl-cli \
                     train` with the same async.run_id first",
                    self.run,
                    self.link.url,
                    self.link.patience.as_secs_f64()
                )));
            }
            thread::sleep(Duration::from_millis(200));
        };
        let get = |name: &str| found.get(name).cloned().unwrap_or_default();
        if get("format") != FORMAT {
            return Err(Error::InvalidArgument(format!(
                "run `{}` on {} uses the wire format `{}`, this worker speaks `{FORMAT}`",
                self.run,
                self.link.url,
                get("format")
            )));
        }
        let (algo, obs, act) = (get("algo"), get("obs_dim"), get("act_dim"));
        if algo != expected.algo
            || obs != expected.obs_dim.to_string()
            || act != expected.act_dim.to_string()
        {
            return Err(Error::InvalidArgument(format!(
                "run `{}` on {} is {algo} with obs {obs} / act {act}; this worker's config is {}                  with obs {} / act {}",
                self.run, self.link.url, expected.algo, expected.obs_dim, expected.act_dim
            )));
        }
        Ok(())
    }

    /// The run's servers.
    pub fn servers(&self) -> Servers {
        let link = &self.link;
        Servers {
            policy: Arc::new(RedisParameters {
                link: link.clone(),
                key: key(&self.run, "policy"),
            }),
            model: Arc::new(RedisParameters {
                link: link.clone(),
                key: key(&self.run, "model"),
            }),
            rollouts: Arc::new(RedisStream {
                link: link.clone(),
                key: key(&self.run, "rollouts"),
            }),
            control: Arc::new(RedisControl {
                link: link.clone(),
                control: key(&self.run, "control"),
                reports: key(&self.run, "reports"),
                reserve: Script::new(RESERVE_SCRIPT),
            }),
        }
    }
}
