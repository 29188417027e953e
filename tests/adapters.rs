//! The token where tools need it: `print-token --format`, and the adapters for git, kubectl,
//! Docker and curl, run as processes against a token cache in a temporary folder and through
//! the real tools (git, kubectl, docker, curl) against servers on 127.0.0.1. A missing tool
//! fails its test, saying what to install.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::now;
use sha2::Digest as _;
use specauth::session::{StoredToken, TokenStore};
use specauth::testing::ReplayServer;
use specauth::{Secret, Token};

const BIN: &str = env!("CARGO_BIN_EXE_specauth");

/// A token cache and a profiles file in a temporary folder.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Caches `access` for `provider` + `profile`, expiring at `expires_at`.
    fn seed(&self, provider: &str, profile: &str, access: &str, expires_at: Option<u64>) {
        self.save(&entry(provider, profile, access, expires_at));
    }

    fn save(&self, entry: &StoredToken) {
        TokenStore::new(self.store_dir()).save(entry).unwrap();
    }

    fn cached(&self, provider: &str, profile: &str) -> Option<StoredToken> {
        TokenStore::new(self.store_dir())
            .load(provider, profile)
            .unwrap()
    }

    /// `specauth --store … --config … ARGS` with no inherited SPECAUTH_* variables.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--store").arg(self.store_dir());
        cmd.arg("--config").arg(self.path("profiles.yaml"));
        cmd.args(args);
        scrub_env(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary runs")
    }

    /// Runs with `input` on stdin.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        feed(cmd, input)
    }
}

/// A cache entry of `access` for `provider` + `profile`, obtained now, expiring at `expires_at`.
fn entry(provider: &str, profile: &str, access: &str, expires_at: Option<u64>) -> StoredToken {
    let token = Token {
        expires_at,
        expires_in: expires_at.map(|_| 3600),
        refresh_token: Some(Secret::new("refresh-never-shown")),
        ..Token::bearer(Secret::new(access))
    };
    StoredToken {
        provider: provider.into(),
        profile: profile.into(),
        token,
        inputs: [("client_id".to_owned(), "app".to_owned())].into(),
        obtained_at: now(),
        endpoints: Default::default(),
        refresh_margin: 0,
        client_auth: Vec::new(),
        dpop_key: None,
        resources: Vec::new(),
        issuer: None,
    }
}

fn scrub_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SPECAUTH_")
            || k.starts_with("KUBERNETES_")
            || k.to_ascii_lowercase().ends_with("_proxy")
        {
            cmd.env_remove(k);
        }
    }
}

fn feed(mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("the command starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

/// The path of `tool` on PATH. A missing tool fails the test with how to install it: a lane
/// whose component is missing fails, it never skips.
fn require(tool: &str, install: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(tool))
                .find(|path| path.is_file())
        })
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH: {install}"))
}

const KUBECTL: &str = "install kubectl (`apt-get install kubectl` from the Kubernetes or Google \
    Cloud SDK apt repository, or https://kubernetes.io/docs/tasks/tools/): the kube adapter is \
    tested through it";
const DOCKER: &str = "install the Docker CLI (`apt-get install docker-cli`, or docker-ce-cli \
    from Docker's apt repository; no daemon is needed): the docker-credential adapter is \
    tested through it";

/// A request the https server got.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

type Handler = dyn Fn(&Seen) -> http::Response<Vec<u8>> + Send + Sync;

/// An HTTP/1.1 server over TLS on 127.0.0.1 with a fresh self-signed certificate (rcgen,
/// rustls): kubectl runs an exec plugin only for an https cluster, and Docker's client
/// authenticates to a registry over TLS. It answers each request with `handler` and records
/// it. (`ReplayServer` speaks plain HTTP.)
struct TlsServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TlsServer {
    fn start(handler: impl Fn(&Seen) -> http::Response<Vec<u8>> + Send + Sync + 'static) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, seen, handler) = (config.clone(), recorded.clone(), handler.clone());
                std::thread::spawn(move || serve_tls(stream, config, &seen, &*handler));
            }
        });
        TlsServer { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves the requests of one connection until the client closes it; any error (a TLS alert,
/// a timeout, a head over 64 KiB) ends it.
fn serve_tls(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<Seen>>,
    handler: &Handler,
) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).ok()?, stream);
    let mut buf = Vec::new();
    loop {
        let (request, head, body) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = req.parse(&buf).ok()? {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::to_owned)
                };
                let body = header("content-length").map_or(Some(0), |n| n.parse().ok())?;
                let request = Seen {
                    method: req.method?.to_owned(),
                    path: req.path?.to_owned(),
                    authorization: header("authorization"),
                };
                break (request, head, body);
            }
            if buf.len() > 64 * 1024 {
                return None;
            }
            let mut chunk = [0; 4096];
            let n = tls.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        // A body is read and dropped (neither tool sends one here).
        let end = head.checked_add(body).filter(|&end| end <= 1 << 20)?;
        while buf.len() < end {
            let mut chunk = [0; 4096];
            let n = tls.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..end);
        let reply = handler(&request);
        seen.lock().unwrap().push(request.clone());
        let status = reply.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in reply.headers() {
            out.push_str(&format!("{name}: {}\r\n", value.to_str().ok()?));
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", reply.body().len()));
        tls.write_all(out.as_bytes()).ok()?;
        if request.method != "HEAD" {
            tls.write_all(reply.body()).ok()?;
        }
        tls.flush().ok()?;
    }
}

#[test]
fn print_token_formats_for_headers_json_and_shells() {
    let sb = Sandbox::new();
    let at = now() + 3000;
    sb.seed("gitlab", "default", "glat-123", Some(at));
    let run = |format: &str| ok(&sb.run(&["print-token", "gitlab", "--format", format]));
    // `bare` is the default, byte for byte.
    assert_eq!(ok(&sb.run(&["print-token", "gitlab"])), "glat-123\n");
    assert_eq!(run("bare"), "glat-123\n");
    assert_eq!(run("header"), "Authorization: Bearer glat-123\n");
    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"access_token": "glat-123", "token_type": "Bearer", "expires_at": at})
    );
    let env = run("env");
    assert_eq!(
        env,
        format!("export SPECAUTH_TOKEN='glat-123'\nexport SPECAUTH_TOKEN_EXPIRES_AT={at}\n")
    );
    // The shell reads back exactly what was cached.
    let sh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{env}printf '%s|%s' \"$SPECAUTH_TOKEN\" \"$SPECAUTH_TOKEN_EXPIRES_AT\""
        ))
        .output()
        .unwrap();
    assert_eq!(text(&sh.stdout), format!("glat-123|{at}"));
    let o = sb.run(&["print-token", "gitlab", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn sign_in_needed_exits_4_naming_the_login_command() {
    let sb = Sandbox::new();
    let o = sb.run(&["print-token", "gitlab", "--profile", "work"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "specauth: no cached token for `gitlab` (profile `work`); run `specauth login gitlab --profile work` first\n"
    );
    let o = sb.run(&["--json", "print-token", "gitlab"]);
    assert_eq!(o.status.code(), Some(4));
    let err: serde_json::Value = serde_json::from_str(text(&o.stderr).trim()).unwrap();
    assert_eq!(err["error"]["kind"], "sign_in");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("run `specauth login gitlab` first"),
        "{err}"
    );
}

#[test]
fn print_token_resource_chooses_the_profile_whose_token_is_for_it() {
    let sb = Sandbox::new();
    let at = Some(now() + 3000);
    let save = |profile: &str, access: &str, resources: &[&str], age: u64| {
        let mut e = entry("gitlab", profile, access, at);
        e.resources = resources.iter().map(|r| r.to_string()).collect();
        e.obtained_at = now() - age;
        sb.save(&e);
    };
    save("default", "tok-api", &["https://api.example"], 300);
    save("files", "tok-files", &["https://files.example"], 200);
    save(
        "files-new",
        "tok-files-new",
        &["https://files.example", "https://other.example"],
        100,
    );
    // Another provider's token for a resource is never served for this one.
    let mut github = entry("github", "default", "gh-tok", at);
    github.resources = vec!["https://nowhere.example".into()];
    sb.save(&github);
    let print = |args: &[&str]| {
        let mut all = vec!["print-token", "gitlab"];
        all.extend_from_slice(args);
        sb.run(&all)
    };

    // The given profile's token is for it: that one.
    let o = print(&["--resource", "https://api.example"]);
    assert_eq!(ok(&o), "tok-api\n");
    assert_eq!(text(&o.stderr), "");
    // It is not: the one other profile whose token is, silently.
    let o = print(&["--resource", "https://other.example"]);
    assert_eq!(ok(&o), "tok-files-new\n");
    assert_eq!(text(&o.stderr), "");
    // Several are: the given profile when it is one of them…
    let o = print(&["--resource", "https://files.example", "--profile", "files"]);
    assert_eq!(ok(&o), "tok-files\n");
    assert_eq!(text(&o.stderr), "");
    // …else the most recently obtained, saying so.
    let o = print(&["--resource", "https://files.example"]);
    assert_eq!(ok(&o), "tok-files-new\n");
    assert_eq!(
        text(&o.stderr),
        "specauth: the profiles files, files-new of `gitlab` hold tokens for `https://files.example`; using `files-new`, obtained most recently (choose with --profile)\n"
    );
    // With a format, and from a profile that holds no token at all.
    let o = print(&[
        "--resource",
        "https://other.example",
        "--profile",
        "nobody",
        "--format",
        "header",
    ]);
    assert_eq!(ok(&o), "Authorization: Bearer tok-files-new\n");

    // None is: exit 2 (as a mismatch always was), naming the login that gets one.
    let o = print(&["--resource", "https://nowhere.example"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "");
    assert_eq!(
        text(&o.stderr),
        "specauth: input `resource`: the cached token of `gitlab` (profile `default`) was requested for https://api.example, not for `https://nowhere.example`, and no other profile of `gitlab` holds one for it; run `specauth login gitlab --set resource=https://nowhere.example` (under another --profile to keep both)\n"
    );
    // No token under the profile and none for the resource anywhere: sign-in needed, exit 4.
    let o = print(&["--resource", "https://nowhere.example", "--profile", "work"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
}

// ---------------------------------------------------------------------------------------------
// git
// ---------------------------------------------------------------------------------------------

/// `git ARGS` with only the configuration given here: no system or global file, no prompt,
/// and `credential.helper` set to `specauth credential gitlab` on the sandbox's cache.
fn git(sb: &Sandbox, args: &[&str]) -> Command {
    let helper = format!(
        "!'{BIN}' --store '{}' --config '{}' credential gitlab",
        sb.store_dir().display(),
        sb.path("profiles.yaml").display()
    );
    let mut cmd = Command::new("git");
    cmd.args(["-c", "credential.helper=", "-c"])
        .arg(format!("credential.helper={helper}"))
        .args(args);
    scrub_env(&mut cmd);
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("HOME", sb.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn git_ok(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .expect("git runs (Debian: apt-get install git)");
    ok(&o)
}

#[test]
fn git_credential_fill_gets_the_cached_token_from_the_real_git() {
    let sb = Sandbox::new();
    let at = now() + 3000;
    sb.seed("gitlab", "default", "glat-git", Some(at));
    // A git without the bearer capability: the token as the password of user `oauth2`.
    let o = feed(
        git(&sb, &["credential", "fill"]),
        "protocol=https\nhost=gitlab.com\n\n",
    );
    assert_eq!(
        ok(&o),
        format!(
            "protocol=https\nhost=gitlab.com\nusername=oauth2\npassword=glat-git\npassword_expiry_utc={at}\n"
        )
    );
    // A user name git already has is kept.
    let o = feed(
        git(&sb, &["credential", "fill"]),
        "protocol=https\nhost=gitlab.com\nusername=alice\n\n",
    );
    assert!(ok(&o).contains("username=alice\npassword=glat-git\n"));
    // A caller that offers `authtype` gets the token as a bearer credential, no password.
    let o = feed(
        git(&sb, &["credential", "fill"]),
        "capability[]=authtype\nprotocol=https\nhost=gitlab.com\n\n",
    );
    let out = ok(&o);
    assert!(
        out.starts_with("capability[]=authtype\n")
            && out.contains("authtype=Bearer\ncredential=glat-git\n")
            && out.contains(&format!("password_expiry_utc={at}\n"))
            && !out.contains("password="),
        "{out}"
    );
    // git's `approve` (store) changes nothing; `reject` (erase) of another token neither.
    let o = feed(
        git(&sb, &["credential", "approve"]),
        "protocol=https\nhost=gitlab.com\nusername=oauth2\npassword=glat-git\n\n",
    );
    ok(&o);
    let o = feed(
        git(&sb, &["credential", "reject"]),
        "protocol=https\nhost=gitlab.com\nusername=oauth2\npassword=someone-else\n\n",
    );
    ok(&o);
    assert_eq!(
        sb.cached("gitlab", "default").unwrap().token.expires_at,
        Some(at)
    );
    // `reject` of the token served: the cache stops serving it (the next use refreshes).
    let o = feed(
        git(&sb, &["credential", "reject"]),
        "protocol=https\nhost=gitlab.com\nusername=oauth2\npassword=glat-git\n\n",
    );
    ok(&o);
    let cached = sb.cached("gitlab", "default").unwrap();
    assert_eq!(cached.token.expires_at, Some(0));
    assert!(
        cached.token.refresh_token.is_some(),
        "the refresh token stays"
    );
}

/// A smart-HTTP git server on 127.0.0.1 serving one repository to requests that carry
/// `token`, and asking for credentials (401) otherwise.
fn git_server(sb: &Sandbox, token: &'static str) -> ReplayServer {
    let repo = sb.path("repo");
    let init = |args: &[&str]| {
        let o = Command::new("git")
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs (Debian: apt-get install git)");
        assert!(o.status.success(), "{}", text(&o.stderr));
        o.stdout
    };
    init(&["init", "-q", "-b", "main", repo.to_str().unwrap()]);
    init(&[
        "-C",
        repo.to_str().unwrap(),
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "one",
    ]);
    let refs = init(&[
        "upload-pack",
        "--stateless-rpc",
        "--advertise-refs",
        repo.join(".git").to_str().unwrap(),
    ]);
    let mut advert = b"001e# service=git-upload-pack\n0000".to_vec();
    advert.extend(refs);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("oauth2:{token}")
        )
    );
    let bearer = format!("Bearer {token}");
    ReplayServer::with_handler(move |req| {
        let auth = req.header("authorization").unwrap_or("");
        if auth == basic || auth == bearer {
            http::Response::builder()
                .status(200)
                .header(
                    "content-type",
                    "application/x-git-upload-pack-advertisement",
                )
                .header("cache-control", "no-cache")
                .body(advert.clone())
                .unwrap()
        } else {
            http::Response::builder()
                .status(401)
                .header("www-authenticate", "Basic realm=\"git\"")
                .body(Vec::new())
                .unwrap()
        }
    })
    .unwrap()
}

#[test]
fn git_fetches_over_http_with_the_token_and_forgets_a_refused_one() {
    let sb = Sandbox::new();
    sb.seed("gitlab", "default", "glat-http", Some(now() + 3000));
    let server = git_server(&sb, "glat-http");
    let url = format!("{}/group/repo.git", server.origin());
    let refs = git_ok(&mut git(&sb, &["ls-remote", &url]));
    assert!(refs.contains("\trefs/heads/main"), "{refs}");
    let sent: Vec<String> = server
        .received()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(!sent.is_empty(), "git sent no credentials");
    // A server that refuses the token: git erases it, and the cache stops serving it.
    sb.seed("gitlab", "default", "glat-revoked", Some(now() + 3000));
    let o = git(&sb, &["ls-remote", &url]).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        sb.cached("gitlab", "default").unwrap().token.expires_at,
        Some(0),
        "{}",
        text(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

#[test]
fn kube_prints_an_exec_credential_as_kubernetes_documents_it() {
    let sb = Sandbox::new();
    sb.seed("google", "default", "ya29.kube", Some(4_102_444_800)); // 2100-01-01T00:00:00Z
    let run = |info: Option<&str>| {
        let mut cmd = sb.command(&["kube", "google", "--min-valid", "0"]);
        if let Some(info) = info {
            cmd.env("KUBERNETES_EXEC_INFO", info);
        }
        cmd.output().unwrap()
    };
    // The shape of the example in the Kubernetes docs ("client-go credential plugins"):
    // {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
    //  "status": {"token": "my-bearer-token", "expirationTimestamp": "2018-03-05T17:30:20-08:00"}}
    let o = run(Some(
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
    ));
    let cred: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(
        cred,
        serde_json::json!({
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {"token": "ya29.kube", "expirationTimestamp": "2100-01-01T00:00:00Z"}
        })
    );
    let stamp = cred["status"]["expirationTimestamp"].as_str().unwrap();
    let parsed =
        time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(parsed.unix_timestamp(), 4_102_444_800);
    // Without KUBERNETES_EXEC_INFO (kubectl before 1.22 sets none): v1.
    let cred: serde_json::Value = serde_json::from_str(&ok(&run(None))).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    // kubectl asking for v1beta1 gets v1beta1.
    let o = run(Some(
        r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}"#,
    ));
    let cred: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(cred["status"]["token"], "ya29.kube");
    // Not interactive and no token: exit 4 with the login command, and nothing on stdout.
    let mut cmd = sb.command(&["kube", "google", "--profile", "prod"]);
    cmd.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
    );
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "");
    assert!(text(&o.stderr).contains("specauth login google --profile prod"));
}

/// A kubeconfig for the cluster at `https://127.0.0.1:PORT` (its self-signed certificate not
/// checked) whose user's credential comes from the exec plugin `specauth kube google --profile
/// PROFILE` on the sandbox's cache, asked for `ExecCredential` `api_version`.
fn kubeconfig(sb: &Sandbox, port: u16, api_version: &str, profile: &str) -> PathBuf {
    let store = sb.store_dir();
    let profiles = sb.path("profiles.yaml");
    let args = [
        "--store",
        path_str(&store),
        "--config",
        path_str(&profiles),
        "kube",
        "google",
        "--profile",
        profile,
    ];
    // JSON is YAML: kubectl reads it, and paths need no YAML quoting.
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {
            "server": format!("https://127.0.0.1:{port}"),
            "insecure-skip-tls-verify": true,
        }}],
        "users": [{"name": "me", "user": {"exec": {
            "apiVersion": format!("client.authentication.k8s.io/{api_version}"),
            "command": BIN,
            "args": args,
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": false,
        }}}],
        "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "me"}}],
        "current-context": "loopback",
    });
    let path = sb.path(&format!("kubeconfig-{api_version}-{profile}"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// `kubectl get --raw /api` with only `kubeconfig`, no terminal (so not interactive).
fn kubectl(sb: &Sandbox, kubeconfig: &Path) -> Output {
    let mut cmd = Command::new(require("kubectl", KUBECTL));
    cmd.arg("--kubeconfig").arg(kubeconfig).args([
        "--request-timeout",
        "5s",
        "get",
        "--raw",
        "/api",
    ]);
    scrub_env(&mut cmd);
    cmd.env_remove("KUBECONFIG")
        .env("HOME", sb.dir.path())
        .stdin(Stdio::null());
    cmd.output().expect("kubectl runs")
}

#[test]
fn kubectl_runs_the_exec_plugin_and_sends_its_token() {
    let sb = Sandbox::new();
    sb.seed("google", "default", "ya29.kubectl", Some(now() + 3000));
    let api = TlsServer::start(|req| {
        if req.authorization.as_deref() == Some("Bearer ya29.kubectl") {
            common::json_reply(200, r#"{"kind":"APIVersions","versions":["v1"]}"#)
        } else {
            common::json_reply(
                401,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#,
            )
        }
    });
    for version in ["v1", "v1beta1"] {
        // kubectl refuses an ExecCredential of another apiVersion than it asked for in
        // KUBERNETES_EXEC_INFO, so success means the plugin answered in this one.
        let o = kubectl(&sb, &kubeconfig(&sb, api.port, version, "default"));
        let out = ok(&o);
        assert!(out.contains("\"APIVersions\""), "{version}: {out}");
        let seen = api.seen();
        let last = seen.last().expect("kubectl sent a request");
        assert_eq!(last.method, "GET");
        assert!(last.path.starts_with("/api?"), "{}", last.path); // ?timeout=5s
        assert_eq!(
            last.authorization.as_deref(),
            Some("Bearer ya29.kubectl"),
            "{version}"
        );
    }
    // No cached token for `prod`, and no terminal: the plugin exits 4, kubectl fails saying
    // so, the plugin's login command reaches the person, and nothing is sent unauthenticated.
    let sent = api.seen().len();
    let o = kubectl(&sb, &kubeconfig(&sb, api.port, "v1", "prod"));
    assert_ne!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(err.contains("exit code 4"), "{err}");
    assert!(
        err.contains("run `specauth login google --profile prod` first"),
        "{err}"
    );
    assert_eq!(api.seen().len(), sent);
}

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

/// `docker-credential-specauth`, a link to the binary as Docker would run it.
fn docker_helper(sb: &Sandbox, op: &str, input: &str) -> Output {
    let link = sb.path("docker-credential-specauth");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link).unwrap();
    }
    let mut cmd = Command::new(&link);
    cmd.arg(op);
    scrub_env(&mut cmd);
    cmd.env("SPECAUTH_STORE", sb.store_dir())
        .env("SPECAUTH_CONFIG", sb.path("profiles.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    feed(cmd, input)
}

#[test]
fn docker_credential_helper_speaks_the_documented_protocol() {
    let sb = Sandbox::new();
    sb.seed(
        "gitlab",
        "registry.gitlab.com",
        "glat-docker",
        Some(now() + 3000),
    );
    sb.seed("gitlab", "default", "not-for-docker", Some(now() + 3000));
    // get: the server URL on stdin, {"ServerURL","Username","Secret"} out (the protocol's
    // example: `echo "https://index.docker.io/v1/" | docker-credential-osxkeychain get`).
    let o = docker_helper(&sb, "get", "https://registry.gitlab.com/v2/\n");
    let cred: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(
        cred,
        serde_json::json!({"ServerURL": "https://registry.gitlab.com/v2/",
            "Username": "oauth2accesstoken", "Secret": "glat-docker"})
    );
    // A bare host works as well.
    let o = docker_helper(&sb, "get", "registry.gitlab.com");
    assert!(ok(&o).contains("\"Secret\":\"glat-docker\""));
    // Unknown registry: the exact message Docker's client treats as "no credentials".
    let o = docker_helper(&sb, "get", "https://index.docker.io/v1/\n");
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        text(&o.stdout),
        "credentials not found in native keychain\n"
    );
    assert!(
        text(&o.stderr).contains("--profile index.docker.io"),
        "{}",
        text(&o.stderr)
    );
    // list: {"ServerURL": "Username"} of the registries served.
    let o = docker_helper(&sb, "list", "");
    let listed: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({"https://registry.gitlab.com": "oauth2accesstoken"})
    );
    // store: what `get` served is accepted as is; a password of its own is refused.
    let o = docker_helper(
        &sb,
        "store",
        r#"{"ServerURL":"https://registry.gitlab.com","Username":"oauth2accesstoken","Secret":"glat-docker"}"#,
    );
    ok(&o);
    let o = docker_helper(
        &sb,
        "store",
        r#"{"ServerURL":"https://registry.gitlab.com","Username":"david","Secret":"passw0rd1"}"#,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!text(&o.stdout).contains("passw0rd1") && !text(&o.stderr).contains("passw0rd1"));
    // erase (`docker logout`): the token stays for `specauth logout` to revoke.
    ok(&docker_helper(
        &sb,
        "erase",
        "https://registry.gitlab.com\n",
    ));
    assert!(sb.cached("gitlab", "registry.gitlab.com").is_some());
    // The same through `specauth docker-credential`, provider and profile given.
    let o = sb.run_with_stdin(
        &[
            "docker-credential",
            "get",
            "--provider",
            "gitlab",
            "--profile",
            "default",
        ],
        "https://anything.example\n",
    );
    assert!(ok(&o).contains("\"Secret\":\"not-for-docker\""));
}

#[test]
fn docker_reads_a_manifest_with_the_helpers_token_and_logout_keeps_it() {
    let docker = require("docker", DOCKER);
    let sb = Sandbox::new();
    // An image in a registry on 127.0.0.1 that asks for Basic credentials: a config blob and
    // a manifest naming it.
    let config =
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest =
        |bytes: &[u8]| format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(bytes));
    let config_digest = digest(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest,
        },
        "layers": [],
    })
    .to_string();
    let manifest_digest = digest(manifest.as_bytes());
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "oauth2accesstoken:glat-registry"
        )
    );
    let registry = {
        let (basic, config_digest) = (basic.clone(), config_digest.clone());
        TlsServer::start(move |req| {
            let reply =
                http::Response::builder().header("docker-distribution-api-version", "registry/2.0");
            if req.authorization.as_deref() != Some(basic.as_str()) {
                return reply
                    .status(401)
                    .header("www-authenticate", "Basic realm=\"specauth-test\"")
                    .body(Vec::new())
                    .unwrap();
            }
            let (content_type, body, reference) = match req.path.as_str() {
                "/v2/" => ("application/json", "{}", None),
                "/v2/r/manifests/t" => (
                    "application/vnd.docker.distribution.manifest.v2+json",
                    manifest.as_str(),
                    Some(&manifest_digest),
                ),
                p if p == format!("/v2/r/blobs/{config_digest}") => {
                    ("application/octet-stream", config, Some(&config_digest))
                }
                _ => return reply.status(404).body(Vec::new()).unwrap(),
            };
            let reply = reply.status(200).header("content-type", content_type);
            let reply = match reference {
                Some(d) => reply.header("docker-content-digest", d.as_str()),
                None => reply,
            };
            reply.body(body.as_bytes().to_vec()).unwrap()
        })
    };
    let host = format!("127.0.0.1:{}", registry.port);
    // The token Docker should get: the profile named after the registry host.
    sb.seed(
        "gitlab",
        &format!("127.0.0.1_{}", registry.port),
        "glat-registry",
        Some(now() + 3000),
    );
    // `docker-credential-specauth` on PATH, as the README sets it up (a link to the binary),
    // behind a script that notes each operation Docker asks for.
    let links = sb.path("links");
    std::fs::create_dir(&links).unwrap();
    let link = links.join("docker-credential-specauth");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let bin = sb.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let ops = sb.path("operations");
    let script = bin.join("docker-credential-specauth");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            ops.display(),
            link.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let docker_config = sb.path("docker");
    std::fs::create_dir(&docker_config).unwrap();
    std::fs::write(
        docker_config.join("config.json"),
        serde_json::json!({"credHelpers": {&host: "specauth"}}).to_string(),
    )
    .unwrap();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&docker);
        cmd.args(args);
        scrub_env(&mut cmd);
        cmd.env("PATH", &path)
            .env("HOME", sb.dir.path())
            .env("DOCKER_CONFIG", &docker_config)
            .env("SPECAUTH_STORE", sb.store_dir())
            .env("SPECAUTH_CONFIG", sb.path("profiles.yaml"))
            .stdin(Stdio::null());
        cmd.output().expect("docker runs")
    };
    let operations = || std::fs::read_to_string(&ops).unwrap_or_default();

    let image = format!("{host}/r:t");
    let o = run(&["manifest", "inspect", "--insecure", &image]);
    let shown: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(shown["config"]["digest"], config_digest.as_str());
    assert_eq!(operations(), "get\n", "Docker asked the helper once");
    // Docker answered the registry's Basic challenge with the helper's user name and token.
    let seen = registry.seen();
    let manifest_request = seen
        .iter()
        .find(|r| r.path == "/v2/r/manifests/t")
        .expect("docker asked for the manifest");
    assert_eq!(
        manifest_request.authorization.as_deref(),
        Some(basic.as_str())
    );
    assert!(
        seen.iter()
            .any(|r| r.path == "/v2/" && r.authorization.is_none())
    );

    // `docker logout HOST`: Docker asks the helper to erase; the token stays for `specauth
    // logout`, which also revokes it.
    let o = run(&["logout", &host]);
    let out = ok(&o);
    assert!(
        !text(&o.stderr).contains("WARNING"),
        "{out}{}",
        text(&o.stderr)
    );
    // (Docker 28 erases under the host and under its https:// URL.)
    let asked = operations();
    let mut asked = asked.lines();
    assert_eq!(asked.next(), Some("get"));
    let erased: Vec<&str> = asked.collect();
    assert!(
        !erased.is_empty() && erased.iter().all(|op| *op == "erase"),
        "{erased:?}"
    );
    let cached = sb.cached("gitlab", &format!("127.0.0.1_{}", registry.port));
    assert_eq!(
        cached.map(|c| c.token.access_token.secret().to_owned()),
        Some("glat-registry".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

#[test]
fn curl_sends_the_header_and_exits_with_curls_code() {
    let sb = Sandbox::new();
    sb.seed("gitlab", "default", "glat-curl", Some(now() + 3000));
    let server = ReplayServer::with_handler(|req| {
        let (status, body) = match (req.url.as_str(), req.header("authorization")) {
            ("/api/v4/user", Some("Bearer glat-curl")) => (200, "{\"username\":\"alice\"}"),
            ("/api/v4/user", _) => (401, "no token"),
            _ => (404, "not found"),
        };
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    })
    .unwrap();
    let url = format!("{}/api/v4/user", server.origin());
    let o = sb.run(&["curl", "gitlab", "--", "-sS", "-f", &url]);
    assert_eq!(ok(&o), "{\"username\":\"alice\"}");
    assert_eq!(
        server.received()[0].header("authorization"),
        Some("Bearer glat-curl")
    );
    // curl's own exit code comes through: 22 is `-f` on an HTTP error.
    let missing = format!("{}/nope", server.origin());
    let o = sb.run(&["curl", "gitlab", "--", "-s", "-f", &missing]);
    assert_eq!(o.status.code(), Some(22), "{}", text(&o.stderr));
    // The user's stdin stays the user's: `-d @-` still reads the request body from it.
    let mut cmd = sb.command(&["curl", "gitlab", "--", "-s", "-d", "@-", &url]);
    cmd.stdin(Stdio::piped());
    let o = feed(cmd, "name=x");
    assert_eq!(ok(&o), "{\"username\":\"alice\"}");
    assert_eq!(server.received()[2].body, b"name=x");
    // No cached token: curl is not run, exit 4.
    let o = sb.run(&["curl", "github", "--", "-s", &url]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(server.received().len(), 3);
}

/// Caches a DPoP-bound token (`token_type: DPoP`, with its key) for `provider` + `profile`.
fn seed_dpop(sb: &Sandbox, provider: &str, profile: &str, access: &str) -> specauth::dpop::DpopKey {
    let key = specauth::dpop::DpopKey::generate().unwrap();
    let mut e = entry(provider, profile, access, Some(now() + 3000));
    e.token.token_type = "DPoP".into();
    e.dpop_key = Some(key.secret().clone());
    sb.save(&e);
    key
}

#[test]
fn curl_sends_a_dpop_proof_for_its_request_with_a_bound_token() {
    use base64::Engine as _;
    let sb = Sandbox::new();
    let key = seed_dpop(&sb, "gitlab", "default", "dpop-tok");
    let server = ReplayServer::with_handler(|_| {
        http::Response::builder()
            .status(200)
            .body(b"ok".to_vec())
            .unwrap()
    })
    .unwrap();
    let url = format!("{}/api/items?page=2", server.origin());
    let claims_of = |proof: &str| -> serde_json::Value {
        // The proof verifies with the cached key's public half, whose thumbprint it names.
        let header: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(proof.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["jwk"], key.public_jwk());
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(
            proof,
            &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims
    };
    let o = sb.run(&[
        "curl", "gitlab", "--", "-sS", "-X", "PUT", "-d", "x=1", &url,
    ]);
    assert_eq!(ok(&o), "ok");
    let got = &server.received()[0];
    assert_eq!(got.method, "PUT");
    assert_eq!(got.header("authorization"), Some("DPoP dpop-tok"));
    let claims = claims_of(got.header("dpop").expect("a DPoP proof"));
    assert_eq!(claims["htm"], "PUT");
    assert_eq!(claims["htu"], format!("{}/api/items", server.origin()));
    assert_eq!(
        claims["ath"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(b"dpop-tok"))
            .as_str()
    );
    assert!(claims.get("nonce").is_none());
    // Data without -X is a POST, and the proof says so; --dpop-nonce puts the server's nonce in.
    let o = sb.run(&[
        "curl",
        "gitlab",
        "--dpop-nonce",
        "n-1",
        "--",
        "-s",
        "-d",
        "x=1",
        &url,
    ]);
    assert_eq!(ok(&o), "ok");
    let got = &server.received()[1];
    assert_eq!(got.method, "POST");
    let claims = claims_of(got.header("dpop").expect("a DPoP proof"));
    assert_eq!(
        (claims["htm"].as_str(), claims["nonce"].as_str()),
        (Some("POST"), Some("n-1"))
    );
    // Two URLs: no single request to prove, so curl is not run.
    let o = sb.run(&["curl", "gitlab", "--", "-s", &url, &url]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("curl's arguments hold 2 URLs"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(server.received().len(), 2);
}

#[test]
fn credential_helpers_refuse_a_dpop_bound_token() {
    let sb = Sandbox::new();
    seed_dpop(&sb, "gitlab", "registry.gitlab.com", "dpop-tok");
    let refused = |o: &Output, tool: &str| {
        assert_eq!(o.status.code(), Some(2), "{tool}: {}", text(&o.stderr));
        let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            said.contains(&format!("is bound to a DPoP key (RFC 9449): each request needs a fresh proof, which {tool} cannot send")),
            "{said}"
        );
        assert!(!said.contains("dpop-tok"), "{said}");
    };
    let o = sb.run_with_stdin(
        &[
            "credential",
            "gitlab",
            "get",
            "--profile",
            "registry.gitlab.com",
        ],
        "protocol=https\nhost=gitlab.com\n\n",
    );
    refused(&o, "git");
    let o = sb.run(&["kube", "gitlab", "--profile", "registry.gitlab.com"]);
    refused(&o, "kubectl");
    let o = docker_helper(&sb, "get", "https://registry.gitlab.com\n");
    refused(&o, "Docker");
}

// ---------------------------------------------------------------------------------------------
// --endpoint at login
// ---------------------------------------------------------------------------------------------

fn json_reply(body: serde_json::Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into_bytes())
        .unwrap()
}

#[test]
fn endpoint_overrides_given_at_login_are_kept_for_refreshes() {
    let sb = Sandbox::new();
    let server = ReplayServer::start().unwrap();
    let origin = server.origin();
    server.push(json_reply(serde_json::json!({
        "device_code": "dc-1", "user_code": "WDJB-MJHT", "verification_uri": "https://github.com/login/device",
        "expires_in": 900, "interval": 1
    })));
    // Lives 30 s: `print-token --min-valid 60` refreshes at once.
    server.push(json_reply(serde_json::json!({
        "access_token": "gho_first", "token_type": "bearer", "expires_in": 30, "refresh_token": "ghr_first"
    })));
    let o = sb.run(&[
        "login",
        "github",
        "--device",
        "--set",
        "client_id=Iv1.app",
        "--endpoint",
        &format!("device_authorization={origin}/device"),
        "--endpoint",
        &format!("token={origin}/token"),
    ]);
    ok(&o);
    let cached = sb.cached("github", "default").unwrap();
    assert_eq!(
        cached.endpoints.get("token").map(String::as_str),
        Some(format!("{origin}/token").as_str())
    );
    // The refresh goes to the sandbox's token endpoint without --endpoint.
    server.push(json_reply(serde_json::json!({
        "access_token": "gho_second", "token_type": "bearer", "expires_in": 28800, "refresh_token": "ghr_second"
    })));
    let o = sb.run(&["print-token", "github", "--min-valid", "60"]);
    assert_eq!(ok(&o), "gho_second\n");
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].url, "/token");
    assert!(
        String::from_utf8_lossy(&received[2].body).contains("refresh_token=ghr_first"),
        "{:?}",
        String::from_utf8_lossy(&received[2].body)
    );
    // Kept across the refresh.
    assert_eq!(
        sb.cached("github", "default").unwrap().endpoints,
        cached.endpoints
    );
}

#[test]
fn kube_signs_in_first_when_kubectl_says_a_person_is_there() {
    let sb = Sandbox::new();
    let server = ReplayServer::start().unwrap();
    let origin = server.origin();
    server.push(json_reply(serde_json::json!({
        "device_code": "dc-1", "user_code": "WDJB-MJHT", "verification_uri": "https://github.com/login/device",
        "expires_in": 900, "interval": 1
    })));
    server.push(json_reply(serde_json::json!({
        "access_token": "gho_kube", "token_type": "bearer", "expires_in": 28800
    })));
    let mut cmd = sb.command(&[
        "kube",
        "github",
        "--device",
        "--set",
        "client_id=Iv1.app",
        "--endpoint",
        &format!("device_authorization={origin}/device"),
        "--endpoint",
        &format!("token={origin}/token"),
    ]);
    cmd.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true}}"#,
    );
    let o = cmd.output().unwrap();
    // The person reads the code on stderr; kubectl reads only the credential on stdout.
    assert!(text(&o.stderr).contains("WDJB-MJHT"), "{}", text(&o.stderr));
    let cred: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(cred["status"]["token"], "gho_kube");
    assert!(cred["status"]["expirationTimestamp"].is_string());
    assert_eq!(
        sb.cached("github", "default")
            .unwrap()
            .token
            .access_token
            .secret(),
        "gho_kube"
    );
}
