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

mod adapters;
mod complete;
mod curl;
mod demo;
mod fast;
mod format;
mod output;
mod session;
mod signin;
mod specs;
mod store;

pub(crate) use output::{
    PrintableStderr, STDOUT_CLOSED, printable, printable_lines, write_err, write_out,
};

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use specauth::error::NotSignedInReason;
use specauth::inputs::env_var_name;
use specauth::session::{InputSources, Profiles, TokenStore};
use specauth::store::Store as _;
use specauth::transport::TransportConfig;
use specauth::{Client, Error, Inputs, Loader, Spec, UreqTransport};

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
    /// Sign-in needed: no cached token, or its refresh token expired or was revoked.
    pub const SIGN_IN: u8 = 4;
}

#[derive(Parser, Debug)]
#[command(
    name = "specauth",
    version,
    about = "A declarative OAuth 2 client: one YAML spec per provider, one interpreter.",
    after_help = "Exit codes: 0 success; 1 the provider refused (or examples failed); \
                  2 bad usage, spec or input; 3 transport failure or unparseable reply; \
                  4 sign-in needed (no cached token, or its refresh token expired or was revoked)."
)]
struct Cli {
    /// Extra folders of specs, searched before the bundled ones (by `id:`, or file name ID.yaml).
    #[arg(
        long = "specs",
        value_name = "DIR",
        global = true,
        help_heading = "Global options"
    )]
    specs: Vec<PathBuf>,
    /// JSON output: errors on stderr as one object {"error": {kind, status, code, message, hint,
    /// uri}}; `check`, `test`, `tokens` and `providers` print their results as JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// Token cache folder (default: the platform data folder, e.g. ~/.local/share/specauth), or
    /// `sqlite:PATH` or `postgres://…` (builds with the `sqlite` / `postgres` features).
    #[arg(
        long,
        value_name = "PATH",
        env = "SPECAUTH_STORE",
        global = true,
        help_heading = "Global options"
    )]
    store: Option<PathBuf>,
    /// Profiles file (default: the platform config folder, e.g. ~/.config/specauth/profiles.yaml).
    #[arg(
        long,
        value_name = "PATH",
        env = "SPECAUTH_CONFIG",
        global = true,
        help_heading = "Global options"
    )]
    config: Option<PathBuf>,
    /// Log each HTTP exchange to stderr, secrets redacted.
    #[arg(short, long, global = true, help_heading = "Global options")]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

// `defer`: each command's arguments are built only when that command runs (or its help, or
// completions, ask for them): building every command's arguments for every run was most of
// what clap cost a one-shot `token`. Names, descriptions and examples stay on the variants,
// so `specauth --help` lists them as before. An `Args` struct must not carry a doc comment:
// built late, it would replace the description of every command that uses the struct.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
enum Command {
    /// Perform a grant and print the normalised token as one JSON object.
    #[command(
        after_help = "Example:\n  SPECAUTH_CLIENT_SECRET=… specauth token xee authorization_code \\\n      --set client_id=app --set code=abc"
    )]
    Token(GrantArgs),
    /// Print the exact HTTP request a grant would send (secrets redacted unless --reveal).
    #[command(
        after_help = "Example:\n  specauth render xee refresh_token --set client_id=app \\\n      --set client_secret=s --set refresh_token=r"
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
        after_help = "Examples:\n  specauth login gitlab --set client_id=app\n  specauth login github --device --profile work\n  specauth login gitlab --no-browser --port 8765"
    )]
    Login(session::LoginArgs),
    /// Print a valid access token for scripts, refreshing it first when it is about to expire.
    #[command(
        name = "print-token",
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(specauth print-token gitlab)\" https://gitlab.com/api/v4/user\n  specauth print-token gitlab --format header | curl -H @- https://gitlab.com/api/v4/user\n  eval \"$(specauth print-token gitlab --format env)\""
    )]
    PrintToken(session::PrintTokenArgs),
    /// git credential helper: answers git's `get` with the cached token (refreshed when due).
    #[command(
        after_help = "Example (git appends get, store or erase):\n  git config --global credential.https://gitlab.com.helper \\\n      '!specauth credential gitlab'"
    )]
    Credential(adapters::CredentialArgs),
    /// kubectl exec credential plugin: prints an ExecCredential with the cached token.
    #[command(
        after_help = "Example (kubeconfig user):\n  exec:\n    apiVersion: client.authentication.k8s.io/v1\n    command: specauth\n    args: [kube, google]\n    interactiveMode: IfAvailable"
    )]
    Kube(adapters::KubeArgs),
    /// Docker credential helper (also run as `docker-credential-specauth`): the server URL on
    /// stdin, JSON out.
    #[command(
        name = "docker-credential",
        after_help = "Example:\n  ln -s \"$(command -v specauth)\" ~/.local/bin/docker-credential-specauth\n  # ~/.docker/config.json: {\"credHelpers\": {\"registry.gitlab.com\": \"specauth\"}}\n  specauth login gitlab --profile registry.gitlab.com"
    )]
    DockerCredential(adapters::DockerArgs),
    /// Run curl with an `Authorization` header carrying the cached token (refreshed when due);
    /// exits with curl's exit code.
    #[command(
        after_help = "Example:\n  specauth curl gitlab -- -sf https://gitlab.com/api/v4/user\n\nThe header reaches curl through a pipe (-H @/dev/fd/N), never on its command line."
    )]
    Curl(curl::CurlArgs),
    /// List cached tokens (no secrets).
    #[command(after_help = "Example:\n  specauth tokens --json")]
    Tokens,
    /// Revoke the cached token at the provider (when the spec has a revocation endpoint) and forget it.
    #[command(after_help = "Example:\n  specauth logout gitlab --profile work")]
    Logout(session::LogoutArgs),
    /// Revoke a token at the provider (RFC 7009): the cached one, or --set token=….
    #[command(after_help = "Example:\n  specauth revoke gitlab --which access")]
    Revoke(session::TokenOpArgs),
    /// Ask the provider whether a token is active (RFC 7662) and print its answer.
    #[command(after_help = "Example:\n  specauth introspect gitlab --which access")]
    Introspect(session::TokenOpArgs),
    /// Validate spec files (or folders of them); errors name file:line:col.
    #[command(
        after_help = "Examples:\n  specauth check specs/ my-provider.yaml\n  specauth --json check my-specs/   # {\"ok\": [...], \"problems\": [{file, line, column, message}]}"
    )]
    Check {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Replay each spec's documented examples offline and report pass/fail per example.
    #[command(
        after_help = "Examples:\n  specauth test my-specs/acme.yaml\n  specauth --json test my-specs/   # per example: spec, name, file, line, column, passed, differences"
    )]
    Test {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also print each example's rendered request (redacted) and outcome (also with -v).
        #[arg(long = "show", short = 's')]
        show: bool,
    },
    /// Write a new spec to fill in: the schema modeline, `extends: oauth2`, one example.
    #[command(
        after_help = "Example:\n  specauth new acme -o my-specs/acme.yaml && specauth check my-specs/acme.yaml"
    )]
    New {
        /// The provider's id (lower case letters, digits and `-`).
        id: String,
        /// Write it to this file instead of stdout (refused when the file exists).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Run providers' documented exchanges against a local server through the real transport.
    #[command(
        after_help = "Examples:\n  specauth demo            # every bundled provider, one row per seed provider\n  specauth demo xee saasu  # the full transcript of these\n  specauth demo -v         # the full transcript of every provider"
    )]
    Demo {
        /// Provider ids, shown in full (default: every bundled spec, summarised).
        #[arg(add = clap_complete::ArgValueCandidates::new(complete::providers))]
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
    /// Write a spec from an authorization server's discovery metadata (RFC 8414 / OpenID), or
    /// from a protected resource's (RFC 9728), such as an MCP server's URL.
    #[command(
        after_help = "Example:\n  specauth import https://id.example.com/realms/acme --id acme -o my-specs/acme.yaml"
    )]
    Import {
        /// The issuer URL, or a protected resource's URL.
        issuer: String,
        /// The spec's id (default: from the issuer's host and path).
        #[arg(long)]
        id: Option<String>,
        /// Write the spec to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The client signs with a private key: use `private_key_jwt` when the server offers
        /// it (give the key when requesting tokens: --set private_key=@key.pem).
        #[arg(long)]
        private_key: bool,
        /// The client presents a TLS client certificate (mutual TLS, RFC 8705): `ca` for one
        /// from a CA the server trusts (`tls_client_auth`), `self-signed` for one registered
        /// with the server (`self_signed_tls_client_auth`). The spec then uses the server's
        /// `mtls_endpoint_aliases` (give the certificate when requesting tokens:
        /// --set client_certificate=@cert.pem --set client_key=@key.pem).
        #[arg(long, value_name = "KIND", value_parser = ["ca", "self-signed"], conflicts_with = "private_key")]
        certificate: Option<String>,
    },
    /// Print the JSON Schema of the spec format (for editors and validators).
    #[command(
        after_help = "Example:\n  specauth schema > spec.schema.json\n  # then, first line of a spec: # yaml-language-server: $schema=spec.schema.json"
    )]
    Schema,
    /// Print the shell script that completes commands, flags, provider ids, grants and
    /// profile names (computed at each Tab, so new specs and profiles complete at once).
    #[command(
        after_help = "Examples:\n  specauth completions bash > /etc/bash_completion.d/specauth\n  echo 'source <(specauth completions zsh)' >> ~/.zshrc"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
struct GrantArgs {
    /// Bundled provider id, an id from a --specs folder, or a path to a spec file.
    #[arg(add = clap_complete::ArgValueCandidates::new(complete::providers))]
    provider: String,
    /// Grant name (authorization_code, refresh_token, password, client_credentials, …).
    #[arg(add = clap_complete::ArgValueCandidates::new(complete::grants))]
    grant: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Total timeout of the exchange in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

// How inputs are given: shared by every command that talks to a provider.
// (Not a doc comment: see `defer` on `cli::Command`.)
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
    #[arg(long, default_value = "default", add = clap_complete::ArgValueCandidates::new(complete::profiles))]
    profile: String,
}

impl InputArgs {
    /// No `--set` or `--endpoint`, and `profile`.
    pub(crate) fn for_profile(profile: &str) -> InputArgs {
        InputArgs {
            set: Vec::new(),
            endpoint: Vec::new(),
            profile: profile.to_owned(),
        }
    }
}

/// What every command shares.
pub(crate) struct Ctx {
    loader: Loader,
    /// The --specs folders, in order (`login --mcp` writes its spec to the first).
    specs_dirs: Vec<PathBuf>,
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

    /// [`Ctx::spec_and_inputs`] for a command about a cached token: without `--endpoint`,
    /// the endpoints given at login (kept with the token) apply, so a sandbox's token is
    /// refreshed, revoked and introspected where it came from.
    pub(crate) fn cached_spec_and_inputs(
        &self,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        self.cached_spec_and_inputs_from(&self.loader, provider, args)
    }

    /// [`Ctx::cached_spec_and_inputs`] for refreshing a cached token: only the spec's
    /// `refresh_token` grant is compiled ([`Loader::with_only_grant`]).
    pub(crate) fn refresh_spec_and_inputs(
        &self,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        let loader = self.loader.clone().with_only_grant("refresh_token");
        self.cached_spec_and_inputs_from(&loader, provider, args)
    }

    fn cached_spec_and_inputs_from(
        &self,
        loader: &Loader,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        if args.endpoint.is_empty()
            && !specauth::spec::is_path(provider)
            && let Some(entry) = self.store()?.load(provider, &args.profile)?
            && !entry.endpoints.is_empty()
        {
            let mut args = args.clone();
            args.endpoint = entry
                .endpoints
                .iter()
                .map(|(name, url)| format!("{name}={url}"))
                .collect();
            return self.spec_and_inputs_from(loader, provider, &args);
        }
        self.spec_and_inputs_from(loader, provider, args)
    }

    /// The `--endpoint NAME=URL` overrides, by name.
    pub(crate) fn endpoints(
        args: &InputArgs,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        args.endpoint
            .iter()
            .map(|e| {
                e.split_once('=')
                    .map(|(n, u)| (n.to_owned(), u.to_owned()))
                    .ok_or_else(|| Error::Usage(format!("--endpoint `{e}` must be NAME=URL")))
            })
            .collect()
    }

    /// The spec with `--endpoint` overrides applied, and its inputs gathered.
    pub(crate) fn spec_and_inputs(
        &self,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        self.spec_and_inputs_from(&self.loader, provider, args)
    }

    /// [`Ctx::spec_and_inputs`] for a command that makes one grant's request and nothing
    /// else: the spec's other grants are not compiled ([`Loader::with_only_grant`]).
    fn grant_spec_and_inputs(&self, args: &GrantArgs) -> Result<(Spec, Inputs), Error> {
        let loader = self.loader.clone().with_only_grant(&args.grant);
        self.spec_and_inputs_from(&loader, &args.provider, &args.inputs)
    }

    fn spec_and_inputs_from(
        &self,
        loader: &Loader,
        provider: &str,
        args: &InputArgs,
    ) -> Result<(Spec, Inputs), Error> {
        let mut spec = loader.load(provider)?;
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

/// The registration script of clap_complete's dynamic engine for `shell`: it runs
/// `COMPLETE=SHELL specauth -- WORDS…` at each Tab (see [`complete`]).
fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| Error::Usage(format!("no completions for {name}")))?;
    // Written to memory first: a failure to write stdout must not panic.
    let mut script = Vec::new();
    completer
        .write_registration("COMPLETE", "specauth", "specauth", "specauth", &mut script)
        .map_err(|e| Error::Usage(format!("cannot write the {name} script: {e}")))?;
    out!("{}", String::from_utf8_lossy(&script))?;
    Ok(exit::OK)
}

/// Runs the command line and returns the exit code.
pub(crate) fn main() -> u8 {
    let argv = arguments();
    if let Some(code) = fast::print_token(&argv) {
        return code;
    }
    full(argv)
}

/// Every command through clap. Never inlined into [`main`]: every command's code is inlined
/// here (about 140 KB), and the fast path above stays a small function apart from it, which
/// the release build's linker script (`build.rs`) places with the rest of `print-token`'s hot
/// code, so a cached `print-token` maps a few pages of code instead of this whole function.
#[inline(never)]
fn full(argv: Vec<std::ffi::OsString>) -> u8 {
    // `COMPLETE=SHELL specauth -- WORDS…`: a shell asking for completions; answers and exits.
    clap_complete::CompleteEnv::with_factory(completion_command).complete();
    let cli = parse(argv);
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
        specs_dirs: cli.specs.clone(),
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
        Command::Credential(args) => adapters::credential(&ctx, &args),
        Command::Kube(args) => adapters::kube(&ctx, &args),
        Command::Curl(args) => curl::run(&ctx, &args),
        Command::DockerCredential(args) => adapters::docker(&ctx, &args),
        Command::Logout(args) => session::logout(&ctx, &args),
        Command::Revoke(args) => session::revoke(&ctx, &args),
        Command::Introspect(args) => session::introspect(&ctx, &args),
        // Checking and replaying specs reads their examples; every other command skips them.
        Command::Check { paths } => {
            specs::check(&ctx.loader.clone().with_examples(), &paths, ctx.json)
        }
        Command::Test { paths, show } => specs::test(
            &ctx.loader.clone().with_examples(),
            &paths,
            show || verbose,
            ctx.json,
        ),
        Command::New { id, output } => specs::new_spec(&ctx.loader, &id, output.as_deref()),
        Command::Demo { providers } => {
            demo::run(&ctx.loader.clone().with_examples(), &providers, verbose)
        }
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
        Command::Import {
            issuer,
            id,
            output,
            private_key,
            certificate,
        } => import(
            &issuer,
            id,
            output.as_deref(),
            private_key,
            certificate.as_deref(),
        ),
        Command::Schema => outln!(
            "{}",
            serde_json::to_string_pretty(&specauth::spec::schema()).unwrap_or_default()
        )
        .map(|()| exit::OK),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(code) => code,
        // Nothing reads stdout any more (`| head`): nothing left to do or say.
        Err(_) if STDOUT_CLOSED.load(Ordering::Relaxed) => exit::OK,
        Err(e) => {
            report(&e, ctx.json);
            exit_code(&e)
        }
    }
}

/// The command tree the completion engine walks: every command built before the global
/// options are added to it, so that, as before `defer`, a command's own options are offered
/// before the global ones.
fn completion_command() -> clap::Command {
    let mut cmd = Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |mut c| {
            c.build();
            c
        });
    }
    cmd
}

/// `Cli::parse_from(argv)`, except that clap's command tree is not dropped: freeing its few
/// hundred allocations cost about 140 k instructions (a tenth of what clap costs a one-shot
/// `token`), and the process exits soon after, which returns the memory anyway. Errors,
/// `--help` and `--version` are printed and exit exactly as `parse_from` does them.
fn parse(argv: Vec<std::ffi::OsString>) -> Cli {
    if let Some(cli) = parse_one_command(&argv) {
        return cli;
    }
    let mut cmd = Cli::command();
    let parsed = cmd.try_get_matches_from_mut(argv).and_then(|mut matches| {
        <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
            // As clap's `parse_from`: the error formatted against a fresh command.
            .map_err(|e| e.format(&mut Cli::command()))
    });
    match parsed {
        Ok(cli) => {
            std::mem::forget(cmd);
            cli
        }
        Err(e) => e.exit(),
    }
}

/// The command line parsed against a tree holding only the command it names first (`token`
/// in `specauth token ID GRANT …`), or `None` for anything but a clean parse (no command
/// first, an unknown one, `--help`, a usage error), which [`parse`] then parses against the
/// whole tree and reports exactly as before. When it builds a tree, clap copies the five global options
/// into every one of its ~20 commands, deferred or not: about 100 KB of heap (25 pages, each a
/// page fault) and 80 k instructions for a command line that names one of them. The tree's
/// root options are the whole tree's own, so a command line parses to the same [`Cli`] here
/// as there (a test compares the two).
fn parse_one_command(argv: &[std::ffi::OsString]) -> Option<Cli> {
    let name = argv.get(1)?.to_str()?;
    if name.starts_with('-') {
        return None;
    }
    let whole = Cli::command();
    let command = whole.find_subcommand(name)?.clone();
    let mut tree = whole
        .get_arguments()
        .fold(clap::Command::new("specauth"), |tree, arg| {
            tree.arg(arg.clone())
        })
        .subcommand_required(true)
        .subcommand(command);
    let cli = tree
        .try_get_matches_from_mut(argv)
        .ok()
        .and_then(|mut matches| {
            <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches).ok()
        })?;
    // As in `parse`: the process exits soon, so neither tree is worth freeing.
    std::mem::forget(tree);
    std::mem::forget(whole);
    Some(cli)
}

/// The command line, with `docker-credential-specauth OP` (a link to this binary, the name
/// Docker runs) read as `specauth docker-credential OP`.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_stem())
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if invoked_as == "docker-credential-specauth" {
        args.insert(1, "docker-credential".into());
    }
    args
}

/// The exit code for an error.
pub(crate) fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Provider(_) => exit::REFUSED,
        Error::Transport(_) | Error::Reply { .. } => exit::TRANSPORT,
        Error::NotSignedIn { .. } => exit::SIGN_IN,
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
            provider,
            profile,
            reason,
            ..
        } => {
            let login = login_command(provider, profile);
            match reason {
                NotSignedInReason::NoEntry => format!("run `{login}` first"),
                _ => format!("run `{login}` again"),
            }
        }
        _ => return None,
    })
}

/// The command that signs in to `provider` under `profile` (named only when not `default`).
pub(crate) fn login_command(provider: &str, profile: &str) -> String {
    if profile == "default" {
        format!("specauth login {provider}")
    } else {
        format!("specauth login {provider} --profile {profile}")
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
            let value = buf.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                // `--set client_secret=-` with nothing piped in is a mistake, never a value.
                return Err(Error::Input {
                    name: name.to_owned(),
                    problem: format!("`--set {name}=-` read nothing from stdin"),
                });
            }
            value.to_owned()
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

/// [`client`] for requests of `spec`: its transport presents the client certificate of the
/// inputs (`client_certificate`, `client_key`), which mutual TLS (RFC 8705) needs, and trusts
/// the CAs of `tls_ca_certificates` when given.
pub(crate) fn client_for(
    timeout: u64,
    spec: &Spec,
    grant: &str,
    inputs: &Inputs,
) -> Result<Client<UreqTransport>, Error> {
    let transport = client(timeout).transport().clone();
    Ok(Client::with_transport(
        transport.with_tls_inputs(spec, grant, inputs)?,
    ))
}

fn token(ctx: &Ctx, args: &GrantArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.grant_spec_and_inputs(args)?;
    let token = client_for(args.timeout, &spec, &args.grant, &inputs)?.token(
        &spec,
        &args.grant,
        &inputs,
    )?;
    outln!("{}", token.to_json(true))?;
    Ok(exit::OK)
}

fn render(ctx: &Ctx, args: &GrantArgs, reveal: bool) -> Result<u8, Error> {
    let (spec, inputs) = ctx.grant_spec_and_inputs(args)?;
    let request = spec.render(args.grant.as_str(), &inputs)?;
    // An xml body does not escape control characters that spec values or inputs carry.
    if reveal {
        out!("{}", printable_lines(&request.revealed()))?;
    } else {
        out!("{}", printable_lines(request.redacted()))?;
    }
    Ok(exit::OK)
}

fn import(
    issuer: &str,
    id: Option<String>,
    output: Option<&std::path::Path>,
    private_key: bool,
    certificate: Option<&str>,
) -> Result<u8, Error> {
    use specauth::discovery::ClientCredential;
    let credential = match (private_key, certificate) {
        (_, Some("self-signed")) => ClientCredential::SelfSignedCertificate,
        (_, Some(_)) => ClientCredential::Certificate,
        (true, None) => ClientCredential::PrivateKey,
        (false, None) => ClientCredential::Secret,
    };
    let (url, id, yaml) = specauth::discovery::import_spec_for(
        &UreqTransport::new(),
        issuer,
        id.as_deref(),
        credential,
    )?;
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

#[cfg(test)]
mod tests {
    use super::{Cli, parse_one_command};
    use clap::Parser as _;

    fn argv(line: &str) -> Vec<std::ffi::OsString> {
        line.split_whitespace().map(Into::into).collect()
    }

    #[test]
    fn a_command_line_parses_the_same_against_its_one_command_tree() {
        for line in [
            "specauth token acme refresh_token --set client_id=app",
            "specauth token acme refresh_token --set a=1 --set b=2 \
             --endpoint token=http://127.0.0.1:1/t --profile work --timeout 5",
            // The global options after the command, each kind (a list, a flag, a value, short).
            "specauth token acme refresh_token --json -v --specs d1 --specs d2 \
             --store store --config profiles.yaml",
            "specauth render acme refresh_token --reveal --set x=y",
            "specauth print-token acme --format header --min-valid 60",
            "specauth print-token acme --dpop GET https://api.example/x",
            "specauth login acme --json",
            "specauth logout acme",
            "specauth revoke acme --set token=t",
            "specauth introspect acme --set token=t",
            "specauth curl acme -- -s https://api.example/",
            "specauth kube acme",
            "specauth credential acme get",
            "specauth docker-credential get",
            "specauth check a.yaml specs/",
            "specauth test a.yaml --json",
            "specauth demo",
            "specauth providers --specs d",
            "specauth tokens --store s",
            "specauth new acme",
            "specauth import https://issuer.example",
            "specauth schema",
            "specauth completions bash",
        ] {
            let whole = Cli::try_parse_from(argv(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
            let one = parse_one_command(&argv(line))
                .unwrap_or_else(|| panic!("{line} did not parse against its one command"));
            assert_eq!(format!("{one:?}"), format!("{whole:?}"), "{line}");
        }
    }

    #[test]
    fn anything_but_a_clean_parse_is_left_to_the_whole_tree() {
        for line in [
            "specauth",
            "specauth --help",
            "specauth --version",
            // A global option first: the whole tree parses it (to the same result).
            "specauth --json token acme refresh_token",
            "specauth tokn acme",
            "specauth token",
            "specauth token --help",
            "specauth token acme refresh_token --bogus",
            "specauth token acme refresh_token --timeout soon",
            "specauth help token",
        ] {
            assert!(parse_one_command(&argv(line)).is_none(), "{line}");
        }
    }
}
