//! A throwaway `redis-server` on a free loopback port, for tests and benchmarks of the `redis`
//! backend (this crate's, and those of crates that drive it, such as the command line's). It
//! needs the `redis-server` program on the `PATH` (Debian's `redis-server` package; `.ci/run`
//! installs it when missing), and for a TLS server the `openssl` program, which makes its
//! certificates. A helper for tests: it panics, with a message saying what to install, when the
//! server cannot start.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::redis_tls::TlsFiles;

/// A running `redis-server` with an append-only file (`appendfsync always`) in a directory of
/// its own, removed when the server is dropped.
pub struct RedisServer {
    /// The loopback port it listens on.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    password: Option<String>,
    /// Serves TLS only (`rediss://`), requiring a client certificate.
    tls: bool,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("no free loopback port")
        .port()
}

/// A fresh directory under the system's temporary directory.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mbrl-redis-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    dir
}

impl RedisServer {
    /// Starts a server (requiring `password` when given) and waits until it answers.
    pub fn start(password: Option<&str>) -> Self {
        Self::start_with(password, false)
    }

    /// Starts a server that speaks TLS only and requires a client certificate, with a fresh
    /// certificate authority, server and client certificates in its directory
    /// ([`RedisServer::tls_files`]).
    pub fn start_tls(password: Option<&str>) -> Self {
        Self::start_with(password, true)
    }

    fn start_with(password: Option<&str>, tls: bool) -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            dir: fresh_dir(),
            password: password.map(String::from),
            tls,
        };
        if tls {
            make_certificates(&server.dir);
        }
        server.launch();
        server
    }

    /// The certificate authority, client certificate and key of a TLS server.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: Some(self.dir.join("ca.crt")),
            client_cert: Some(self.dir.join("client.crt")),
            client_key: Some(self.dir.join("client.key")),
        }
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        if self.tls {
            let file = |name: &str| self.dir.join(name);
            command
                .args(["--bind", "127.0.0.1", "--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(file("server.crt"))
                .arg("--tls-key-file")
                .arg(file("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(file("ca.crt"));
        } else {
            command.args(["--bind", "127.0.0.1", "--port", &port]);
        }
        command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start redis-server ({e}): install it, e.g. apt-get install redis-server")
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on 127.0.0.1:{} within 10 s",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's URL with `credentials` (`user:password@`) if given (`rediss://` for a
    /// TLS server).
    pub fn url(&self, credentials: &str) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{credentials}127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port from its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The server's directory (its append-only file lives here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The extensions of each certificate [`make_certificates`] signs: a CA, a server for
/// 127.0.0.1 and a client.
const CERTIFICATES: [(&str, &str); 3] = [
    (
        "ca",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\n",
    ),
    (
        "server",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    ),
    (
        "client",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    ),
];

/// A fresh certificate authority (`ca.crt`) and the server and client certificates it signs
/// (`server.crt`, `client.crt`, P-256 keys in `*.key`, valid for two days) in `dir`, made by the
/// `openssl` program.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}): install it (apt-get install openssl)")
            });
        assert!(status.success(), "openssl {args:?} failed in {dir:?}");
    };
    for (serial, (name, extensions)) in CERTIFICATES.into_iter().enumerate() {
        let file = |suffix: &str| format!("{name}.{suffix}");
        let (key, csr, crt, ext) = (file("key"), file("csr"), file("crt"), file("ext"));
        std::fs::write(dir.join(&ext), extensions)
            .unwrap_or_else(|e| panic!("cannot write {ext} in {dir:?}: {e}"));
        let curve = "ec_paramgen_curve:P-256";
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            curve,
            "-out",
            key.as_str(),
        ]);
        let subject = format!("/CN=mbrl test {name}");
        openssl(&[
            "req",
            "-new",
            "-key",
            key.as_str(),
            "-subj",
            subject.as_str(),
            "-out",
            csr.as_str(),
        ]);
        let serial = (serial + 1).to_string();
        let mut sign = vec!["x509", "-req", "-in", csr.as_str(), "-days", "2"];
        sign.extend([
            "-set_serial",
            serial.as_str(),
            "-extfile",
            ext.as_str(),
            "-out",
            crt.as_str(),
        ]);
        if name == "ca" {
            sign.extend(["-signkey", key.as_str()]);
        } else {
            sign.extend(["-CA", "ca.crt", "-CAkey", "ca.key"]);
        }
        openssl(&sign);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
