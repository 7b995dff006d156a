//! A throwaway `redis-server` on a free loopback port, for the tests of the `redis` backend.
//! `.ci/run` installs Debian's `redis-server` when it is missing; without it these tests fail
//! with a message saying so.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `redis-server` with an append-only file in its own directory.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    password: Option<String>,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts a server (requiring `password` when given) and waits until it answers.
    pub fn start(password: Option<&str>) -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
            password: password.map(String::from),
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
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
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's URL with `credentials` (`user:password@`) if given.
    pub fn url(&self, credentials: &str) -> String {
        format!("redis://{credentials}127.0.0.1:{}", self.port)
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

    /// The server's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
