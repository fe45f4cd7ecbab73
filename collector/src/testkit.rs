//! Services of a test's own, for this crate's tests and the benchmarks (bench/collector*):
//! a PostgreSQL cluster (`initdb` and `pg_ctl` from Debian's packages) and a Mosquitto,
//! each in a temporary directory on a free port, stopped when dropped. Nothing here uses a
//! service someone else left running, nor a fixed port.
//!
//! As root, PostgreSQL (which refuses to run as root) runs as the `postgres` user: the
//! temporary directory is given to that user and `initdb`/`pg_ctl` run under its uid.
//! Without the programs the starters return `None` (the tests say "Skipped"), except under
//! CI (`CI` set), where that is a failure: `.ci/run` installs both.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; the services bind it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn missing(what: &str, install: &str) -> Option<std::convert::Infallible> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not installed, and CI is set: CI must install it ({install})");
    }
    eprintln!("Skipped: {what} is not installed ({install}); under CI this test fails instead.");
    None
}

fn wait_for_port(port: u16, secs: u64, alive: &mut dyn FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if !alive() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The uid and gid of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A PostgreSQL cluster in a temporary directory.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

impl PgCluster {
    fn find_bin() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("ANEMONE_TEST_PG_BIN") {
            return Some(PathBuf::from(dir));
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
            .collect();
        found.sort();
        found.pop()
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA").env("LC_ALL", "C");
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Creates and starts a cluster (user `postgres`, trust authentication, loopback only);
    /// `None` when PostgreSQL is not installed and this is not CI.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = PgCluster::find_bin() else {
            missing("PostgreSQL (initdb, pg_ctl)", "apt-get install postgresql")?;
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("anemone-pg-")
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        let owner = if running_as_root() {
            let ids = user_ids("postgres")
                .expect("as root, PostgreSQL runs as the `postgres` user, which does not exist");
            std::os::unix::fs::chown(dir.path(), Some(ids.0), Some(ids.1))
                .expect("give the temporary directory to `postgres`");
            Some(ids)
        } else {
            None
        };
        let mut pg = PgCluster {
            dir,
            bin,
            port: free_port(),
            owner,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        Some(pg)
    }

    fn start_server(&mut self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for `dbname` as the `postgres` user.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// Creates the database `name` and returns its connection string.
    pub async fn create_database(&self, name: &str) -> String {
        let client = crate::db::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database");
        self.url(name)
    }

    /// Stops the server at once (`-m immediate`: like a crash, recovery at the next start).
    pub fn stop_immediately(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .output();
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.start_server();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

/// How a test's Mosquitto is configured.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    /// Accounts (user name, password); with none, anonymous clients are allowed.
    pub accounts: Vec<(String, String)>,
    /// The ACL file's text (`acl_file`), when set.
    pub acl: Option<String>,
    /// `max_inflight_messages` to each client (1000 when unset).
    pub max_inflight: Option<u32>,
}

/// A Mosquitto of the test's own.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(extra.iter().map(PathBuf::from))
        .find(|p| p.exists())
}

impl Mosquitto {
    /// Starts Mosquitto; `None` when it is not installed and this is not CI.
    pub fn start(opts: &MosquittoOptions) -> Option<Mosquitto> {
        let Some(bin) = find_program("mosquitto", &["/usr/sbin/mosquitto"]) else {
            missing("mosquitto", "apt-get install mosquitto")?;
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("anemone-mosquitto-")
            .tempdir()
            .expect("a temporary directory for Mosquitto");
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence false\nlog_dest file {}\nlog_type error\nlog_type warning\nlog_type notice\n\
             # Every message must reach the collector, however far behind it is.\nmax_queued_messages 0\nmax_inflight_messages {}\n",
            dir.path().join("mosquitto.log").display(),
            opts.max_inflight.unwrap_or(1000)
        );
        if running_as_root() {
            // Otherwise Mosquitto switches to the `mosquitto` user, who cannot read `dir`.
            conf.push_str("user root\n");
        }
        if opts.accounts.is_empty() {
            conf.push_str("allow_anonymous true\n");
        } else {
            let passwd = dir.path().join("passwd");
            for (i, (user, password)) in opts.accounts.iter().enumerate() {
                let mut c = Command::new(
                    find_program("mosquitto_passwd", &[])
                        .expect("mosquitto_passwd (package mosquitto)"),
                );
                c.arg("-b");
                if i == 0 {
                    c.arg("-c");
                }
                let st = c
                    .arg(&passwd)
                    .arg(user)
                    .arg(password)
                    .stdout(Stdio::null())
                    .status()
                    .expect("run mosquitto_passwd");
                assert!(st.success(), "mosquitto_passwd failed for {user}");
            }
            conf.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                passwd.display()
            ));
        }
        if let Some(acl) = &opts.acl {
            let path = dir.path().join("acl");
            std::fs::write(&path, acl).expect("write the ACL");
            conf.push_str(&format!("acl_file {}\n", path.display()));
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write mosquitto.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let mut m = Mosquitto { dir, port, child };
        let mut alive = || matches!(m.child.try_wait(), Ok(None));
        let up = wait_for_port(port, 20, &mut alive);
        assert!(up, "mosquitto did not open port {port}: {}", m.log());
        Some(m)
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `anemone-collector` process with a config file of its own.
pub struct CollectorProcess {
    child: Child,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl CollectorProcess {
    /// Writes `config` (TOML) to a temporary file and starts `bin --config <file>`.
    pub fn spawn(bin: &Path, config: &str) -> CollectorProcess {
        let dir = tempfile::tempdir().expect("a temporary directory for the collector");
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, config).expect("write the collector config");
        let log = dir.path().join("collector.log");
        let out = std::fs::File::create(&log).expect("create the collector log");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .env(
                "RUST_LOG",
                std::env::var("ANEMONE_TEST_COLLECTOR_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start anemone-collector");
        CollectorProcess {
            child,
            _dir: dir,
            log,
        }
    }

    /// Runs `bin --config <file> migrate` to completion.
    pub fn migrate(bin: &Path, config: &str) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, config).expect("write the collector config");
        let out = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .arg("migrate")
            .output()
            .expect("run migrate");
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until its log holds `needle` (e.g. "Subscribed"); panics with the log after
    /// `secs`.
    pub fn wait_for_log(&self, needle: &str, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < end,
                "the collector never logged `{needle}`: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until it has subscribed: messages published before the collector's first
    /// subscription are not kept for it by the broker.
    pub fn wait_subscribed(&self) {
        self.wait_for_log("Subscribed to the stations' topics", 60);
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to commit or acknowledge anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
