//! Throwaway PostgreSQL clusters: ratchet's "embedded default".
//!
//! `ratchet demo`, rehearsals and the test-suite need a real server but must not ask the
//! user for one. A [`Cluster`] is made with the PostgreSQL server binaries already on
//! the machine (`initdb` + `pg_ctl` in a temporary directory, on a free loopback port)
//! and is removed again when dropped. PostgreSQL refuses to run as root, so as root the
//! server runs as the `postgres` user.
//!
//! [`connect`] opens a plain client on one of its databases (or any other); [`testing`]
//! builds the per-test databases on top of both.

pub mod testing;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Connect to `url` without TLS (what a scratch cluster on loopback needs) and drive the
/// connection on the current tokio runtime. `ratchet demo` and `ratchet bench` use
/// it for their own sessions next to the engine's; the tests through [`testing`].
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Why a scratch cluster could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found; install them \
         (Debian/Ubuntu: `apt-get install postgresql`) or set RATCHET_PG_BIN to their directory"
    )]
    BinariesNotFound,
    #[error("could not create the cluster directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("`{command}` failed ({status}): {output}")]
    CommandFailed {
        command: String,
        status: String,
        output: String,
    },
    #[error("the scratch server did not accept connections within {0:?}; its log:\n{1}")]
    NotReady(Duration, String),
}

/// A running throwaway PostgreSQL cluster. Dropping it stops the server and deletes its
/// files.
#[derive(Debug)]
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    watchdog: Option<std::process::Child>,
    /// Server settings beyond the scratch defaults (`-c name=value`).
    settings: Vec<(String, String)>,
}

impl Cluster {
    /// Initialise and start a cluster. Blocks until the server accepts connections.
    pub fn start() -> Result<Cluster, ScratchError> {
        Cluster::start_with(&[])
    }

    /// Like [`Cluster::start`], with server settings of its own, e.g.
    /// `("shared_preload_libraries", "pg_stat_statements")`.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Cluster, ScratchError> {
        let bin = find_bin_dir().ok_or(ScratchError::BinariesNotFound)?;
        let run_as = is_root().then(|| "postgres".to_string());
        let dir = tempfile::Builder::new().prefix("ratchet-pg-").tempdir()?;
        if let Some(user) = &run_as {
            run(Command::new("chown").args(["-R", user]).arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let mut cluster = Cluster {
            dir: Some(dir),
            bin,
            port: 0,
            run_as,
            watchdog: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let initdb = cluster.bin.join("initdb");
        let mut cmd = cluster.command(&initdb);
        cmd.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C.UTF-8"]);
        run(&mut cmd)?;
        cluster.port = free_port()?;
        cluster.start_server(&data)?;
        Ok(cluster)
    }

    /// Like [`Cluster::start`], and also stops the server when this process dies without
    /// dropping the cluster (a test binary's statics are never dropped; a SIGKILLed demo).
    pub fn start_with_watchdog() -> Result<Cluster, ScratchError> {
        let mut cluster = Cluster::start()?;
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = cluster.stop_command_line(),
            dir = cluster.dir().display(),
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        cluster.watchdog = Some(child);
        Ok(cluster)
    }

    /// The connection URL of database `db` on this cluster (user `postgres`, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The TCP port the server listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).unwrap_or(Path::new(""))
    }

    /// The server binaries' directory (`pgbench`, `pg_basebackup`, …).
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// A streaming standby of this cluster: `pg_basebackup -R` into a data directory of
    /// its own, started on another loopback port (hot standby: it answers queries, and
    /// `pg_wal_replay_pause()` stops its replay). Dropping it stops and deletes it.
    pub fn start_standby(&self) -> Result<Cluster, ScratchError> {
        let dir = tempfile::Builder::new()
            .prefix("ratchet-pg-standby-")
            .tempdir()?;
        if let Some(user) = &self.run_as {
            run(Command::new("chown").args(["-R", user]).arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let port = self.port.to_string();
        let mut cmd = self.command(&self.bin.join("pg_basebackup"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast", "-h", "127.0.0.1"])
            .args(["-p", &port, "-U", "postgres"]);
        run(&mut cmd)?;
        let standby = Cluster {
            dir: Some(dir),
            bin: self.bin.clone(),
            port: free_port()?,
            run_as: self.run_as.clone(),
            watchdog: None,
            settings: self.settings.clone(),
        };
        standby.start_server(&data)?;
        Ok(standby)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn start_server(&self, data: &Path) -> Result<(), ScratchError> {
        let log = self.dir().join("server.log");
        // Durability is pointless for a cluster that is deleted afterwards; turning it off
        // makes the test-suite several times faster.
        let mut opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB",
            self.port,
            self.dir().display()
        );
        for (k, v) in &self.settings {
            opts.push_str(&format!(" -c {k}={v}"));
        }
        let mut cmd = self.command(&self.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &opts, "-w", "-t", "60", "start"]);
        run(&mut cmd)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Err(ScratchError::NotReady(Duration::from_secs(60), log))
    }

    fn stop_command_line(&self) -> String {
        let pg_ctl = format!(
            "'{}' -D '{}' -m immediate -w stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.data_dir().display()
        );
        match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {pg_ctl}"),
            None => pg_ctl,
        }
    }

    fn command(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_command_line()])
            .status();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Where the server binaries are: `RATCHET_PG_BIN`, then `pg_config --bindir`, then the
/// newest `/usr/lib/postgresql/<major>/bin` (Debian keeps them off `PATH`).
pub fn find_bin_dir() -> Option<PathBuf> {
    let has_initdb = |p: &Path| p.join("initdb").is_file() && p.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("RATCHET_PG_BIN").map(PathBuf::from) {
        return has_initdb(&dir).then_some(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, p)| has_initdb(p))
        .collect();
    candidates.sort();
    if let Some((_, p)) = candidates.pop() {
        return Some(p);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has_initdb(&dir).then_some(dir)
}

fn is_root() -> bool {
    // SAFETY-free way to ask for the effective uid: `id -u` is on every Unix.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16, ScratchError> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn run(cmd: &mut Command) -> Result<(), ScratchError> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(ScratchError::CommandFailed {
        command: format!("{cmd:?}"),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}
