//! The hot command's fast path: `print-token` with a fresh cached token, served without
//! building the argument parser.
//!
//! Scripts call `print-token` before every API request, so its start-up is most of its cost,
//! and building clap's whole command tree was a third of that. This path understands only the
//! plain forms of the flags `print-token` takes (`--profile`, `--min-valid`, `--timeout`,
//! `--format`, `--store`, `--specs`, `--config`, `--json`, each as `--flag VALUE` or
//! `--flag=VALUE`). On
//! anything else (another flag, a value it cannot read, a path spec, no fresh token, any
//! error) it returns `None` and the full parser runs the command from the start, so behaviour,
//! messages and exit codes stay exactly those of the full command.

use std::ffi::OsString;
use std::path::PathBuf;

use specauth::session::TokenStore;

/// What the fast path understood of the command line.
struct Args {
    provider: String,
    profile: String,
    min_valid: u64,
    format: super::format::TokenFormat,
    store: Option<PathBuf>,
}

/// Serves `print-token` from the cache when it can; `None` hands the command to the full parser.
pub(crate) fn print_token(argv: &[OsString]) -> Option<u8> {
    let args = parse(argv)?;
    let root = args
        .store
        .or_else(|| {
            std::env::var_os("SPECAUTH_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(TokenStore::default_root)?;
    // A database store (`sqlite:PATH`, `postgres://…`) is the full command's to open.
    if root.to_str().is_none_or(|r| {
        r.starts_with("sqlite:") || r.starts_with("postgres:") || r.starts_with("postgresql:")
    }) {
        return None;
    }
    let entry = TokenStore::new(root)
        .load(&args.provider, &args.profile)
        .ok()??;
    if entry.token.expires_within(
        specauth::session::now(),
        args.min_valid.max(entry.refresh_margin),
    ) {
        return None;
    }
    let code = match out!("{}", super::format::render(&entry.token, args.format)) {
        Ok(()) => super::exit::OK,
        // The reader went away (`| head`): as the full command, exit 0 without a word.
        Err(_) if super::STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) => {
            super::exit::OK
        }
        Err(e) => {
            super::report(&e, false);
            super::exit_code(&e)
        }
    };
    Some(code)
}

/// `specauth [GLOBAL…] print-token PROVIDER [FLAG…]` in its plain forms, or `None`.
fn parse(argv: &[OsString]) -> Option<Args> {
    let mut words = argv.iter().skip(1).map(|a| a.to_str());
    let mut provider = None;
    let mut command = false;
    let mut profile = None;
    let mut min_valid = None;
    let mut format = None;
    let mut store = None;
    while let Some(word) = words.next() {
        let word = word?;
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (word, None),
        };
        let mut value = || -> Option<String> {
            match inline {
                Some(v) => Some(v.to_owned()),
                None => words.next().flatten().map(str::to_owned),
            }
        };
        match flag {
            "print-token" if !command && inline.is_none() => command = true,
            "--profile" if command && profile.is_none() => profile = Some(value()?),
            "--min-valid" if command && min_valid.is_none() => {
                min_valid = Some(value()?.parse::<u64>().ok()?);
            }
            "--format" if command && format.is_none() => {
                let value = value()?;
                format = Some(
                    <super::format::TokenFormat as clap::ValueEnum>::from_str(&value, false)
                        .ok()?,
                );
            }
            "--timeout" if command => {
                value()?.parse::<u64>().ok()?;
            }
            "--store" if store.is_none() => store = Some(PathBuf::from(value()?)),
            // Read by commands that load a spec or profiles: a fresh cached token needs neither.
            "--specs" | "--config" => {
                value()?;
            }
            "--json" if inline.is_none() => {}
            _ if command && provider.is_none() && !word.starts_with('-') && !word.is_empty() => {
                provider = Some(word.to_owned());
            }
            _ => return None,
        }
    }
    let provider = provider?;
    if specauth::spec::is_path(&provider) {
        return None;
    }
    let profile = profile.unwrap_or_else(|| "default".to_owned());
    Some(Args {
        provider,
        profile,
        min_valid: min_valid.unwrap_or(60),
        format: format.unwrap_or_default(),
        store: store.filter(|s| !s.as_os_str().is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Option<Args> {
        let argv: Vec<OsString> = std::iter::once("specauth")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect();
        parse(&argv)
    }

    #[test]
    fn plain_forms_are_understood() {
        let a = args("print-token gitlab").expect("plain");
        assert_eq!(
            (a.provider.as_str(), a.profile.as_str(), a.min_valid),
            ("gitlab", "default", 60)
        );
        let a =
            args("--store /s print-token gitlab --profile=work --min-valid 120 --timeout 5 --json")
                .expect("flags");
        assert_eq!((a.profile.as_str(), a.min_valid), ("work", 120));
        assert_eq!(a.store, Some(PathBuf::from("/s")));
        let a = args("print-token gitlab --format=env").expect("format");
        assert_eq!(a.format, crate::cli::format::TokenFormat::Env);
        let a = args("print-token --profile work gitlab --specs d --config=c").expect("order");
        assert_eq!(
            (a.provider.as_str(), a.profile.as_str()),
            ("gitlab", "work")
        );
    }

    #[test]
    fn anything_else_goes_to_the_full_parser() {
        for line in [
            "",
            "print-token",
            "token gitlab client_credentials",
            "print-token gitlab --set client_id=x",
            "print-token gitlab --endpoint token=http://127.0.0.1/",
            "print-token gitlab --min-valid soon",
            "print-token gitlab --profile",
            "print-token gitlab --profile a --profile b",
            "print-token gitlab other",
            "print-token gitlab -v",
            "print-token gitlab --help",
            "print-token gitlab --format yaml",
            "print-token gitlab --format json --format env",
            "print-token specs/acme.yaml",
            "--profile x print-token gitlab",
            "print-token gitlab --json=1",
        ] {
            assert!(args(line).is_none(), "{line:?} must fall back");
        }
    }
}
