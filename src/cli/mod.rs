//! Argument parsing, input gathering, output and exit codes. Every decision about OAuth lives
//! in the library; this module only wires it to a terminal.

mod demo;
mod specs;

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use specauth::{Client, Error, Inputs, Loader, Spec, TransportConfig, UreqTransport};

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
    /// Extra folders of specs (ID.yaml), searched before the bundled ones.
    #[arg(long = "specs", value_name = "DIR", global = true)]
    specs: Vec<PathBuf>,
    /// Errors on stderr as one JSON object {"error": {kind, status, code, message, hint, uri}}.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Perform a grant and print the normalised token as one JSON object.
    #[command(
        after_help = "Example:\n  SPECAUTH_CLIENT_SECRET=… specauth token xee authorization_code \\\n      --set client_id=app --set code=abc"
    )]
    Token(GrantArgs),
    /// Print the exact HTTP request a grant would send (secrets redacted unless --reveal).
    #[command(
        after_help = "Example:\n  specauth render priava refresh_token --set region=EU --set client_id=app \\\n      --set client_secret=s --set refresh_token=r --set redirect_uri=https://app/cb"
    )]
    Render {
        #[command(flatten)]
        grant: GrantArgs,
        /// Show secret values instead of [redacted].
        #[arg(long)]
        reveal: bool,
    },
    /// Validate spec files (or folders of them); errors name file:line:col.
    #[command(after_help = "Example:\n  specauth check specs/ my-provider.yaml")]
    Check {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Replay each spec's documented examples offline and report pass/fail per example.
    #[command(after_help = "Example:\n  specauth test specs/xee.yaml")]
    Test {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also print each example's rendered request (redacted) and outcome.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Run providers' documented exchanges against a local server through the real transport.
    #[command(
        after_help = "Example:\n  specauth demo            # every bundled provider\n  specauth demo xee saasu"
    )]
    Demo {
        /// Provider ids (default: every bundled spec).
        providers: Vec<String>,
    },
    /// List the providers that can be used (bundled and from --specs).
    Providers,
}

#[derive(Args, Debug)]
struct GrantArgs {
    /// Bundled provider id, an id from a --specs folder, or a path to a spec file.
    provider: String,
    /// Grant name (authorization_code, refresh_token, password, client_credentials, …).
    grant: String,
    /// An input value (repeatable). NAME=- reads the value from stdin. Inputs also come from
    /// SPECAUTH_<NAME> environment variables; --set wins.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Replace an endpoint's URL, e.g. token=http://127.0.0.1:8080/token (repeatable).
    #[arg(long = "endpoint", value_name = "NAME=URL")]
    endpoint: Vec<String>,
    /// Total timeout of the exchange in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let loader = cli.specs.iter().fold(Loader::new(), |l, d| l.with_dir(d));
    let result = match cli.command {
        Command::Token(args) => token(&loader, &args),
        Command::Render { grant, reveal } => render(&loader, &grant, reveal),
        Command::Check { paths } => specs::check(&loader, &paths),
        Command::Test { paths, verbose } => specs::test(&loader, &paths, verbose),
        Command::Demo { providers } => demo::run(&loader, &providers),
        Command::Providers => specs::providers(&loader, json),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e, json);
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

fn report(e: &Error, json: bool) {
    let mut err = std::io::stderr().lock();
    if json {
        let _ = writeln!(err, "{}", serde_json::json!({ "error": e.to_json() }));
    } else {
        let _ = writeln!(err, "specauth: {e}");
    }
}

fn load_for_grant(loader: &Loader, args: &GrantArgs) -> Result<(Spec, Inputs), Error> {
    let mut spec = loader.load(&args.provider)?;
    for e in &args.endpoint {
        let (name, url) = e
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--endpoint `{e}` must be NAME=URL")))?;
        spec = spec.with_endpoint(name, url)?;
    }
    let inputs = gather_inputs(&spec, &args.set)?;
    Ok((spec, inputs))
}

/// Inputs from `SPECAUTH_<NAME>` variables, then `--set` (which wins).
fn gather_inputs(spec: &Spec, sets: &[String]) -> Result<Inputs, Error> {
    let mut inputs = Inputs::new();
    for (name, _) in spec.inputs() {
        let var = format!("SPECAUTH_{}", name.to_ascii_uppercase().replace('-', "_"));
        if let Ok(value) = std::env::var(&var) {
            inputs.set(name, value);
        }
    }
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
                .read_to_string(&mut buf)
                .map_err(|e| Error::Usage(format!("reading --set {name}=- from stdin: {e}")))?;
            buf.trim_end_matches(['\r', '\n']).to_owned()
        } else {
            value.to_owned()
        };
        inputs.set(name, value);
    }
    Ok(inputs)
}

fn token(loader: &Loader, args: &GrantArgs) -> Result<u8, Error> {
    let (spec, inputs) = load_for_grant(loader, args)?;
    let config = TransportConfig {
        timeout: Duration::from_secs(args.timeout.max(1)),
        ..TransportConfig::default()
    };
    let client = Client::with_transport(UreqTransport::with_config(&config));
    let token = client.token(&spec, &args.grant, &inputs)?;
    println!("{}", token.to_json(true));
    Ok(exit::OK)
}

fn render(loader: &Loader, args: &GrantArgs, reveal: bool) -> Result<u8, Error> {
    let (spec, inputs) = load_for_grant(loader, args)?;
    let request = spec.render(&args.grant, &inputs)?;
    if reveal {
        print!("{}", request.revealed());
    } else {
        print!("{}", request.redacted());
    }
    Ok(exit::OK)
}
