//! A throwaway PostgreSQL server from the Debian `postgresql` package: `initdb` in a temporary
//! folder, listening on 127.0.0.1 at a free port (and a Unix socket in the folder), stopped and
//! removed when the test process exits. When PostgreSQL is missing the test fails, naming what
//! to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running server.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The server of this test process, started on first use.
static SERVER: OnceLock<PgServer> = OnceLock::new();
/// Databases handed out, so each test gets its own.
static NEXT_DB: Mutex<u32> = Mutex::new(0);

/// The shared server (started on first use; stopped at process exit).
pub fn server() -> &'static PgServer {
    SERVER.get_or_init(|| {
        let server = PgServer::start();
        // Statics are never dropped: stop the server when the test process exits.
        extern "C" fn stop_at_exit() {
            if let Some(s) = SERVER.get() {
                s.stop();
            }
        }
        // SAFETY: registering a plain function with no captured state.
        unsafe { libc::atexit(stop_at_exit) };
        server
    })
}

/// `initdb`'s folder: the newest `/usr/lib/postgresql/N/bin`, or `initdb` on the PATH.
fn find_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    if let Ok(o) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        && o.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if let Some(dir) = p.parent() {
            return dir.to_path_buf();
        }
    }
    panic!(
        "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on the PATH): \
         install it with `apt-get install -y postgresql` (.ci/run does this)"
    );
}

impl PgServer {
    fn start() -> PgServer {
        let bin = find_bin();
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = std::env::temp_dir().join(format!(
            "specauth-pg-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            // initdb refuses to run as root: the folder belongs to `postgres`.
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "cannot give {} to the `postgres` user (the Debian postgresql package creates it)",
                dir.display()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PgServer {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            server.dir.display()
        );
        server.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                server.dir.join("log").to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        server
    }

    /// Runs one of the server's programs (as `postgres` when this process is root).
    fn run(&self, program: &str, args: &[&str]) -> String {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.dir);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new, empty database: its URL.
    pub fn database(&self) -> String {
        let name = {
            let mut n = NEXT_DB.lock().unwrap();
            *n += 1;
            format!("t{}_{}", std::process::id(), *n)
        };
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connect to the test server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a database");
        self.url(&name)
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_dump` of the database at `url` (as SQL text).
    pub fn dump(&self, url: &str) -> String {
        self.run("pg_dump", &["--data-only", url])
    }

    /// The server's data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn stop(&self) {
        let data = self.dir.join("data");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "-t",
                "20",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        remove_dir(&self.dir);
    }
}

fn remove_dir(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir_all(dir).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
