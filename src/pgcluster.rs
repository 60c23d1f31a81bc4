//! A private PostgreSQL cluster in a directory, for `cargo run` without `DATABASE_URL` and for
//! the test harness. Uses the machine's server binaries (initdb, pg_ctl); PostgreSQL refuses
//! to run as root, so as root every server command runs as the `postgres` user.
//!
//! Where it lives: an ordinary user's cluster lives where it was asked to (`.data/postgres`
//! for `cargo run`). Root's cannot always: the `postgres` user must traverse every directory
//! above the data directory, and a repository under `/root` (mode 0700) or any `mktemp -d`
//! is closed to it. So as root the cluster lives under [`ROOT_CLUSTERS`], in a directory
//! named after the path it stands for; nothing of the user's own is ever loosened.
//!
//! Failures are one plain line saying what to do; the tools' own output is logged at debug
//! level (`RUST_LOG=debug`).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::os::unix::fs::PermissionsExt;

use anyhow::{Context, bail};
use sha2::Digest;

/// The one line printed when the server binaries are missing.
pub const MISSING_POSTGRES: &str = "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them \
(Debian/Ubuntu: apt-get install postgresql), set PG_BIN_DIR to their directory, or set DATABASE_URL to a running server";

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
        bail!("PG_BIN_DIR={} holds no initdb/pg_ctl. {MISSING_POSTGRES}", dir.display());
    }
    // Debian keeps server binaries off PATH, one directory per major version: take the newest.
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_tools(dir))
        .ok_or_else(|| anyhow::anyhow!(MISSING_POSTGRES))
}

/// Where root's private clusters live: a directory every user may traverse, kept across
/// reboots (unlike `/tmp`), outside any user's home.
pub const ROOT_CLUSTERS: &str = "/var/tmp/billing-api-postgres";

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Where the cluster asked for at `preferred` actually lives (see the module documentation):
/// `preferred` itself, or as root a directory under [`ROOT_CLUSTERS`] named after it.
pub fn location(preferred: &Path) -> anyhow::Result<PathBuf> {
    if !is_root() {
        return Ok(preferred.to_path_buf());
    }
    // Named after the absolute path asked for (its parent resolved; the directory itself
    // is never created where the postgres user could not use it).
    let parent = preferred.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let canonical = parent
        .canonicalize()
        .with_context(|| format!("resolving {}", parent.display()))?
        .join(preferred.file_name().unwrap_or_else(|| std::ffi::OsStr::new("postgres")));
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let label: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect())
        .unwrap_or_default();
    let parent = Path::new(ROOT_CLUSTERS);
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // /var/tmp is writable by everyone: trust only a real directory that root owns, or
    // another user could have planted it (or a link) to steer root's cluster.
    trusted_directory(parent, &[0])?;
    // Root owns it; the postgres user only needs to pass through.
    fs::set_permissions(parent, fs::Permissions::from_mode(0o755))?;
    let cluster = parent.join(format!("{label}-{}", &hex::encode(digest)[..16]));
    if fs::symlink_metadata(&cluster).is_ok() {
        let (postgres, _) = postgres_ids()?;
        trusted_directory(&cluster, &[0, postgres])?;
    }
    Ok(cluster)
}

/// Refuses `dir` unless it is a directory (not a link) owned by one of `owners` and not
/// writable by group or others.
fn trusted_directory(dir: &Path, owners: &[u32]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let open_to_others = meta.mode() & 0o022 != 0;
    if !meta.file_type().is_dir() || !owners.contains(&meta.uid()) || open_to_others {
        bail!(
            "{} is not a directory that root (or postgres) owns and only it may write: someone else may have made it; remove it and run again",
            dir.display()
        );
    }
    Ok(())
}

fn postgres_ids() -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        if !out.status.success() {
            bail!("running as root needs a `postgres` system user to own the cluster (useradd --system postgres)");
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

/// A cluster living in `root` (data in `root/data`, log in `root/server.log`).
#[derive(Debug, Clone)]
pub struct LocalCluster {
    root: PathBuf,
    bin_dir: PathBuf,
    as_postgres: bool,
    port: u16,
}

/// Settings appended to `postgresql.conf` when the cluster is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Normal durable settings, for development data worth keeping.
    Durable,
    /// fsync off and friends: fast, for throw-away test clusters.
    Ephemeral,
}

impl LocalCluster {
    /// Opens (creating on first use) the cluster in `root`; does not start it.
    /// Opens (creating on first use) the cluster asked for at `preferred`; it may live
    /// elsewhere ([`location`]; [`LocalCluster::root`] says where). Does not start it.
    pub fn open(preferred: &Path, durability: Durability) -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir()?;
        let root = location(preferred)?;
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        let root = root.canonicalize()?;
        let as_postgres = is_root();
        let port_file = root.join("port");
        // Two processes opening a new cluster at once must not both initialise it (each
        // would remove the other's unfinished data directory).
        let init_lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("init.lock"))
            .with_context(|| format!("opening {}", root.join("init.lock").display()))?;
        init_lock.lock().context("waiting for another process setting up the cluster")?;
        let mut cluster = Self { root, bin_dir, as_postgres, port: 0 };
        if cluster.data_dir().join("PG_VERSION").is_file() {
            cluster.port = fs::read_to_string(&port_file)
                .context("reading the cluster's port file")?
                .trim()
                .parse()
                .context("parsing the cluster's port file")?;
            return Ok(cluster);
        }
        cluster.port = free_port()?;
        cluster.init(durability)?;
        fs::write(&port_file, cluster.port.to_string())?;
        Ok(cluster)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this cluster (trust authentication on loopback).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        // The tools change back to the working directory, which the postgres user may not
        // be allowed to enter; the cluster's own directory always is.
        command.current_dir(&self.root);
        command
    }

    /// Runs a tool; on failure, one plain line from `explain` (the tool's output goes to
    /// the debug log).
    fn run(&self, mut command: Command, what: &str, explain: impl Fn(&str) -> String) -> anyhow::Result<()> {
        let output = command.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
        if !output.status.success() {
            let said = format!(
                "{} {}",
                String::from_utf8_lossy(&output.stderr).trim(),
                String::from_utf8_lossy(&output.stdout).trim()
            );
            tracing::debug!(tool = what, output = %said, "PostgreSQL tool failed");
            bail!("{}", explain(&said));
        }
        Ok(())
    }

    /// One plain line for what the tools or the server log said.
    fn explain(&self, what: &str, said: &str) -> String {
        let root = self.root.display();
        if said.contains("No space left on device") {
            format!(
                "{what}: the disk holding {root} is full; free some space, or set DATA_DIR to a directory on another disk"
            )
        } else if said.contains("Permission denied") {
            format!(
                "{what}: the private cluster in {root} cannot be reached by {}; set DATA_DIR to a directory it can write",
                if self.as_postgres { "the postgres user" } else { "this user" }
            )
        } else if said.contains("lock file") && said.contains("already exists") {
            format!("{what}: another PostgreSQL server is using {root}; stop it, or set DATA_DIR to another directory")
        } else {
            format!("{what} (run with RUST_LOG=debug for PostgreSQL's own output, or see {root}/server.log)")
        }
    }

    fn init(&self, durability: Durability) -> anyhow::Result<()> {
        let data = self.data_dir();
        if data.exists() {
            // Left by an initdb that did not finish (no PG_VERSION): ours, and never valid.
            fs::remove_dir_all(&data).with_context(|| format!("removing the unfinished cluster {}", data.display()))?;
        }
        fs::create_dir_all(&data)?;
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            for dir in [&self.root, &data] {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                    .with_context(|| format!("giving {} to the postgres user", dir.display()))?;
            }
        }
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"]);
        self.run(initdb, "initdb", |said| self.explain("creating the private PostgreSQL cluster failed", said))?;
        let mut settings = format!(
            "\n# billing-api\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 300\n",
            self.port
        );
        if durability == Durability::Ephemeral {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str(&settings);
        fs::write(&conf, text)?;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        let mut status = self.command("pg_ctl");
        status.arg("-D").arg(self.data_dir()).arg("status");
        status.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        status.status().is_ok_and(|s| s.success())
    }

    /// Starts the server unless it runs; returns whether this call started it. A port taken
    /// by another program meanwhile is not an error: the server moves to a free one.
    pub fn start(&mut self) -> anyhow::Result<bool> {
        if self.is_running() {
            return Ok(false);
        }
        for attempt in 0..3 {
            if attempt > 0 || !port_is_free(self.port) {
                self.port = free_port()?;
                fs::write(self.root.join("port"), self.port.to_string()).context("writing the cluster's port file")?;
            }
            let mut start = self.command("pg_ctl");
            start
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.root.join("server.log"))
                .arg("-o")
                .arg(format!("-p {}", self.port))
                .args(["-w", "-t", "60", "start"])
                // The server inherits these; a pipe would keep our caller waiting forever.
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .stdin(Stdio::null());
            let status = start.status().context("running pg_ctl start")?;
            if status.success() {
                return Ok(true);
            }
            let log = fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(10).collect::<Vec<_>>().join(" | ");
            tracing::debug!(log = %tail, "PostgreSQL did not start");
            // Lost a race for the port: try another.
            if !(tail.contains("could not bind") || tail.contains("Address already in use")) {
                bail!("{}", self.explain("the private PostgreSQL server did not start", &tail));
            }
        }
        bail!("the private PostgreSQL server did not start: no free port was found on 127.0.0.1")
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w", "stop"]);
        stop.stdout(Stdio::null()).stderr(Stdio::null());
        self.run(stop, "pg_ctl stop", |said| self.explain("stopping the private PostgreSQL server failed", said))
    }

    /// A command line (for a watchdog shell) that stops this cluster at once.
    pub fn stop_command_line(&self) -> String {
        let pg_ctl = self.bin_dir.join("pg_ctl");
        let prefix = if self.as_postgres { "runuser -u postgres -- " } else { "" };
        format!("{prefix}'{}' -D '{}' -m immediate stop", pg_ctl.display(), self.data_dir().display())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Claims the cluster for one serving process; a second `serve` on the same cluster
    /// gets one plain line instead of stopping the first one's database when it ends. The
    /// claim lasts as long as the returned file is open.
    pub fn claim_for_serving(&self) -> anyhow::Result<fs::File> {
        use std::io::{Read, Seek, Write};
        let path = self.root.join("serve.lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if file.try_lock().is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "another billing-api (pid {}) is serving from the private cluster in {}: stop it first, or set DATA_DIR to another directory",
                holder.trim(),
                self.root.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(file)
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Creates `database` on the cluster's `postgres` database unless it exists.
pub async fn ensure_database(cluster: &LocalCluster, database: &str) -> anyhow::Result<()> {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let mut conn = AsyncPgConnection::establish(&cluster.url("postgres")).await?;
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(database)
        .get_result(&mut conn)
        .await?;
    if !found.exists {
        conn.batch_execute(&format!("CREATE DATABASE \"{database}\"")).await?;
    }
    Ok(())
}
