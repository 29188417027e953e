//! Argument parsing, input gathering, output and exit codes. Every decision about OAuth lives
//! in the library; this module only wires it to a terminal.

/// `print!` to standard output, returning a `Result` instead of panicking: see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

/// `println!` to standard output, returning a `Result` instead of panicking: see [`write_out`].
macro_rules! outln {
    () => {
        $crate::cli::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `outln!` for a line holding text from outside (specs, servers, the token cache, arguments):
/// the whole line passes through [`printable`], so it stays one line and cannot drive the
/// terminal.
macro_rules! textln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!(
            "{}\n",
            $crate::cli::printable(&format!($($arg)*))
        ))
    };
}

/// `eprintln!` for one line that never panics (a message that cannot reach stderr is
/// dropped), passed through [`printable`] like [`textln!`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::write_err(format_args!(
            "{}\n",
            $crate::cli::printable(&format!($($arg)*))
        ))
    };
}

mod demo;
mod fast;
mod session;
mod specs;
mod store;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use specauth::error::NotSignedInReason;
use specauth::inputs::env_var_name;
use specauth::session::{InputSources, Profiles, TokenStore};
use specauth::transport::TransportConfig;
use specauth::{Client, Error, Inputs, Loader, Spec, UreqTransport};

/// Set when a write to stdout found its reader gone (`specauth … | head -1`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout, flushed, so a failure surfaces at the write that caused it. A failed write
/// is an [`Error::Io`] the command returns with `?`, ending it; when the reader went away (a
/// broken pipe), [`main`] then exits 0 without a word, as `head` and other pipe readers expect.
///
/// Rust ignores SIGPIPE, so `println!` would panic instead. Restoring SIGPIPE's default would
/// make the kernel kill the process at any write to a closed pipe, stderr included: `-v` logging
/// to a closed pipe could then kill a refresh between the provider rotating the refresh token
/// and the cache saving the new one. Here the output stops only at stdout writes, and every
/// command writes its result to stdout after its work is done and saved.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
            }
            Error::Io {
                action: "write",
                path: PathBuf::from("standard output"),
                source,
            }
        })
}

/// Writes to stderr; a message that cannot be written there has nowhere else to go.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Exit codes: a public contract for scripts.
pub(crate) mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The provider refused (a normalised provider error), or spec examples failed.
    pub const REFUSED: u8 = 1;
    /// Bad usage, spec or input.
    pub const USAGE: u8 = 2;
    /// Transport failure or unparseable reply.
    pub const TRANSPORT: u8 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "specauth",
    version,
    about = "A declarative OAuth 2 client: one YAML spec per provider, one interpreter.",
    after_help = "Exit codes: 0 success; 1 the provider refused (or examples failed); \
                  2 bad usage, spec or input; 3 transport failure or unparseable reply."
)]
struct Cli {
    /// Extra folders of specs, searched before the bundled ones (by `id:`, or file name ID.yaml).
    #[arg(long = "specs", value_name = "DIR", global = true)]
    specs: Vec<PathBuf>,
    /// Errors on stderr as one JSON object {"error": {kind, status, code, message, hint, uri}}.
    #[arg(long, global = true)]
    json: bool,
    /// Token cache folder (default: the platform data folder, e.g. ~/.local/share/specauth), or
    /// `sqlite:PATH` or `postgres://…` (builds with the `sqlite` / `postgres` features).
    #[arg(long, value_name = "PATH", env = "SPECAUTH_STORE", global = true)]
    store: Option<PathBuf>,
    /// Profiles file (default: the platform config folder, e.g. ~/.config/specauth/profiles.yaml).
    #[arg(long, value_name = "PATH", env = "SPECAUTH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log each HTTP exchange to stderr, secrets redacted.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Perform a grant and print the normalised token as one JSON object.
    #[command(
        after_help = "Example:\n  SPECAUTH_CLIENT_SECRET=… specauth token acme authorization_code \\\n      --set client_id=app --set code=abc"
    )]
    Token(GrantArgs),
    /// Print the exact HTTP request a grant would send (secrets redacted unless --reveal).
    #[command(
        after_help = "Example:\n  specauth render acme refresh_token --set client_id=app \\\n      --set client_secret=s --set refresh_token=r"
    )]
    Render {
        #[command(flatten)]
        grant: GrantArgs,
        /// Show secret values instead of [redacted].
        #[arg(long)]
        reveal: bool,
    },
    /// Sign in (authorization code + PKCE through the browser, or --device) and cache the token.
    #[command(
        after_help = "Examples:\n  specauth login acme --set client_id=app\n  specauth login acme --device --profile work\n  specauth login acme --no-browser --port 8765"
    )]
    Login(session::LoginArgs),
    /// Print a valid access token for scripts, refreshing it first when it is about to expire.
    #[command(
        name = "print-token",
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(specauth print-token acme)\" https://api.acme.example/me"
    )]
    PrintToken(session::PrintTokenArgs),
    /// List cached tokens (no secrets).
    #[command(after_help = "Example:\n  specauth tokens --json")]
    Tokens,
    /// Revoke the cached token at the provider (when the spec has a revocation endpoint) and forget it.
    #[command(after_help = "Example:\n  specauth logout acme --profile work")]
    Logout(session::LogoutArgs),
    /// Revoke a token at the provider (RFC 7009): the cached one, or --set token=….
    #[command(after_help = "Example:\n  specauth revoke acme --which access")]
    Revoke(session::TokenOpArgs),
    /// Ask the provider whether a token is active (RFC 7662) and print its answer.
    #[command(after_help = "Example:\n  specauth introspect acme --which access")]
    Introspect(session::TokenOpArgs),
    /// Validate spec files (or folders of them); errors name file:line:col.
    #[command(after_help = "Example:\n  specauth check specs/ my-provider.yaml")]
    Check {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Replay each spec's documented examples offline and report pass/fail per example.
    #[command(after_help = "Example:\n  specauth test my-specs/acme.yaml")]
    Test {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also print each example's rendered request (redacted) and outcome (also with -v).
        #[arg(long = "show", short = 's')]
        show: bool,
    },
    /// Run providers' documented exchanges against a local server through the real transport.
    #[command(
        after_help = "Example:\n  specauth demo            # every bundled provider\n  specauth demo oauth2 acme"
    )]
    Demo {
        /// Provider ids (default: every bundled spec).
        providers: Vec<String>,
    },
    /// List the providers that can be used (bundled and from --specs).
    #[command(
        after_help = "Examples:\n  specauth providers --json | jq '.[].id'\n  specauth providers --markdown   # the README's table"
    )]
    Providers {
        /// Print docs/providers.md: every provider in one Markdown table.
        #[arg(long)]
        markdown: bool,
        /// Print the README's catalogue block (count and categories).
        #[arg(long, hide = true)]
        readme: bool,
        /// Only providers of this category (identity, crm, finance, …).
        #[arg(long, value_name = "CATEGORY")]
        category: Option<String>,
        /// Only providers whose id, name, website, docs or endpoints contain this text.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
    },
    /// Write a spec from an authorization server's discovery metadata (RFC 8414 / OpenID).
    #[command(
        after_help = "Example:\n  specauth import https://id.example.com/realms/acme --id acme -o my-specs/acme.yaml"
    )]
    Import {
        /// The issuer URL.
        issuer: String,
        /// The spec's id (default: from the issuer's host and path).
        #[arg(long)]
        id: Option<String>,
        /// Write the spec to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema of the spec format (for editors and validators).
    #[command(
        after_help = "Example:\n  specauth schema > spec.schema.json\n  # then, first line of a spec: # yaml-language-server: $schema=spec.schema.json"
    )]
    Schema,
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  specauth completions bash > /etc/bash_completion.d/specauth"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
struct GrantArgs {
    /// Bundled provider id, an id from a --specs folder, or a path to a spec file.
    provider: String,
    /// Grant name (authorization_code, refresh_token, password, client_credentials, …).
    grant: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Total timeout of the exchange in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

/// How inputs are given: shared by every command that talks to a provider.
#[derive(Args, Debug, Clone)]
pub(crate) struct InputArgs {
    /// An input value (repeatable). NAME=- reads the value from stdin, NAME=@PATH from a
    /// file (NAME=@@… for a value that starts with @). Precedence:
    /// --set > SPECAUTH_<NAME> environment variable > profile file > spec default.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Replace an endpoint's URL, e.g. token=http://127.0.0.1:8080/token (repeatable).
    #[arg(long = "endpoint", value_name = "NAME=URL")]
    endpoint: Vec<String>,
    /// The profile: which cached token, and which inputs from the profiles file.
    #[arg(long, default_value = "default")]
    profile: String,
}

/// What every command shares.
pub(crate) struct Ctx {
    loader: Loader,
    store: Option<PathBuf>,
    config: Option<PathBuf>,
    json: bool,
}

impl Ctx {
    pub(crate) fn store(&self) -> Result<store::CliStore, Error> {
        self.store
            .clone()
            .or_else(TokenStore::default_root)
            .map(store::CliStore::open)
            .ok_or_else(|| {
                Error::Usage("no platform data folder: give --store PATH or SPECAUTH_STORE".into())
            })?
    }

    fn profiles(&self) -> Result<Profiles, Error> {
        match self.config.clone().or_else(Profiles::default_path) {
            Some(p) => Profiles::load(&p),
            None => Ok(Profiles::default()),
        }
    }

    /// The spec with `--endpoint` overrides applied, and its inputs gathered.
    pub(crate) fn spec_and_inputs(
        &self,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        let mut spec = self.loader.load(provider)?;
        for e in &args.endpoint {
            let (name, url) = e
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--endpoint `{e}` must be NAME=URL")))?;
            spec = spec.with_endpoint(name, url)?;
        }
        let profile = self.profiles()?.inputs(spec.id(), &args.profile);
        let inputs = gather_inputs(&spec, profile, &args.set)?;
        Ok((spec, inputs))
    }
}

pub(crate) fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = fast::print_token(&argv) {
        return code;
    }
    let cli = Cli::parse_from(argv);
    let verbose = cli.verbose;
    if verbose {
        tracing_subscriber::fmt()
            .with_writer(|| PrintableStderr)
            .with_max_level(tracing::Level::DEBUG)
            .with_target(false)
            .without_time()
            .init();
    }
    let ctx = Ctx {
        loader: cli.specs.iter().fold(Loader::new(), |l, d| l.with_dir(d)),
        store: cli.store,
        config: cli.config,
        json: cli.json,
    };
    let result = match cli.command {
        Command::Token(args) => token(&ctx, &args),
        Command::Render { grant, reveal } => render(&ctx, &grant, reveal),
        Command::Login(args) => session::login(&ctx, &args),
        Command::PrintToken(args) => session::print_token(&ctx, &args),
        Command::Tokens => session::tokens(&ctx),
        Command::Logout(args) => session::logout(&ctx, &args),
        Command::Revoke(args) => session::revoke(&ctx, &args),
        Command::Introspect(args) => session::introspect(&ctx, &args),
        // Checking and replaying specs reads their examples; every other command skips them.
        Command::Check { paths } => specs::check(&ctx.loader.clone().with_examples(), &paths),
        Command::Test { paths, show } => {
            specs::test(&ctx.loader.clone().with_examples(), &paths, show || verbose)
        }
        Command::Demo { providers } => demo::run(&ctx.loader.clone().with_examples(), &providers),
        Command::Providers {
            markdown,
            readme,
            category,
            search,
        } => specs::providers(
            &ctx.loader,
            ctx.json,
            markdown,
            readme,
            &specs::Filter { category, search },
        ),
        Command::Import { issuer, id, output } => import(&issuer, id, output.as_deref()),
        Command::Schema => outln!(
            "{}",
            serde_json::to_string_pretty(&specauth::spec::schema()).unwrap_or_default()
        )
        .map(|()| exit::OK),
        Command::Completions { shell } => {
            // clap_complete panics when its writer fails: it writes to memory, then to stdout.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "specauth", &mut script);
            out!("{}", String::from_utf8_lossy(&script)).map(|()| exit::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // Nothing reads stdout any more (`| head`): nothing left to do or say.
        Err(_) if STDOUT_CLOSED.load(Ordering::Relaxed) => ExitCode::from(exit::OK),
        Err(e) => {
            report(&e, ctx.json);
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Provider(_) => exit::REFUSED,
        Error::Transport(_) | Error::Reply { .. } => exit::TRANSPORT,
        _ => exit::USAGE,
    }
}

pub(crate) fn report(e: &Error, json: bool) {
    let advice = advice(e);
    let mut err = std::io::stderr().lock();
    if json {
        let value = e.to_json_with(advice.as_deref());
        let _ = writeln!(err, "{}", serde_json::json!({ "error": value }));
    } else {
        let text = match advice {
            Some(a) => format!("{e}; {a}"),
            None => e.to_string(),
        };
        let _ = writeln!(err, "specauth: {}", printable(&text));
    }
}

/// How to fix an error with this command line: the only place flags are named.
fn advice(e: &Error) -> Option<String> {
    Some(match e {
        Error::MissingInput { name, .. } => {
            format!("give it with --set {name}=… or {}", env_var_name(name))
        }
        Error::MissingEndpoint { endpoint, .. } => {
            format!("add it to the spec or pass --endpoint {endpoint}=URL")
        }
        Error::NotSignedIn {
            provider, reason, ..
        } => match reason {
            NotSignedInReason::ExpiredWithoutRefresh => {
                format!("run `specauth login {provider}` again")
            }
            _ => format!("run `specauth login {provider}` first"),
        },
        _ => return None,
    })
}

/// `text` safe for a terminal: C0 and C1 control characters and DEL (a line break splitting a
/// one-line error, an escape sequence from a server) shown as `\u{…}` escapes. Every string
/// that came from outside passes here before it is printed.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Each line of `text` made [`printable`], line breaks kept: for text of several lines.
pub(crate) fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

/// stderr for `-v` logs: the requests they show carry inputs and spec values, so each log
/// line passes through [`printable`].
struct PrintableStderr;

impl std::io::Write for PrintableStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The subscriber formats each event whole, then writes it in one call.
        let text = printable_lines(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

/// Inputs by precedence (the library's [`InputSources`]), with `--set` values parsed here:
/// `NAME=-` reads the value from stdin.
fn gather_inputs(
    spec: &Spec,
    profile: std::collections::BTreeMap<String, String>,
    sets: &[String],
) -> Result<Inputs, Error> {
    let mut sources = InputSources::new();
    sources.profile = profile;
    let mut stdin_used = false;
    for s in sets {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--set `{s}` must be NAME=VALUE")))?;
        let value = if value == "-" {
            if stdin_used {
                return Err(Error::Usage("only one --set NAME=- can read stdin".into()));
            }
            stdin_used = true;
            let mut buf = String::new();
            std::io::stdin()
                .take(1 << 20)
                .read_to_string(&mut buf)
                .map_err(|e| Error::Input {
                    name: name.to_owned(),
                    problem: format!("reading it from stdin: {e}"),
                })?;
            buf.trim_end_matches(['\r', '\n']).to_owned()
        } else if let Some(literal) = value.strip_prefix("@@") {
            format!("@{literal}")
        } else if let Some(path) = value.strip_prefix('@') {
            // `--set private_key=@key.pem`: the value is the file's content.
            specauth::inputs::value_from_file(std::path::Path::new(path)).map_err(|e| {
                Error::Input {
                    name: name.to_owned(),
                    problem: format!("reading it from a file: {e}"),
                }
            })?
        } else {
            value.to_owned()
        };
        sources.given.push((name.to_owned(), value));
    }
    sources.gather(spec)
}

pub(crate) fn client(timeout: u64) -> Client<UreqTransport> {
    let config = TransportConfig {
        timeout: Duration::from_secs(timeout.max(1)),
        ..TransportConfig::default()
    };
    Client::with_transport(UreqTransport::with_config(&config))
}

fn token(ctx: &Ctx, args: &GrantArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let token = client(args.timeout).token(&spec, &args.grant, &inputs)?;
    outln!("{}", token.to_json(true))?;
    Ok(exit::OK)
}

fn render(ctx: &Ctx, args: &GrantArgs, reveal: bool) -> Result<u8, Error> {
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let request = spec.render(args.grant.as_str(), &inputs)?;
    // An xml body does not escape control characters that spec values or inputs carry.
    if reveal {
        out!("{}", printable_lines(&request.revealed()))?;
    } else {
        out!("{}", printable_lines(request.redacted()))?;
    }
    Ok(exit::OK)
}

fn import(issuer: &str, id: Option<String>, output: Option<&std::path::Path>) -> Result<u8, Error> {
    let (url, metadata) = specauth::discovery::discover(&UreqTransport::new(), issuer)?;
    let id = id.unwrap_or_else(|| specauth::discovery::id_from_issuer(issuer));
    let yaml = specauth::discovery::spec_from_metadata(&id, &metadata, &url)?;
    // The written spec must load; say so now rather than at first use.
    Spec::from_yaml(&format!("{id}.yaml"), &yaml)?;
    match output {
        Some(path) => {
            std::fs::write(path, &yaml).map_err(|e| Error::Io {
                action: "write",
                path: path.to_path_buf(),
                source: e,
            })?;
            errln!("Wrote {} from {url}.", path.display());
        }
        None => out!("{yaml}")?,
    }
    Ok(exit::OK)
}
