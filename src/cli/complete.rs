//! Dynamic shell completion: provider ids, grants and profile names, read when the shell asks.
//!
//! This uses clap_complete's dynamic engine (feature `unstable-dynamic`): the script
//! `specauth completions SHELL` prints only registers `specauth` as its own completer; each
//! Tab runs `COMPLETE=SHELL specauth -- WORDS…`, and the candidates below are computed then,
//! so a provider added to a `--specs` folder or a profile signed in a minute ago completes
//! at once. Chosen over a hidden `__complete` command because clap_complete already writes
//! and maintains the glue for bash, zsh, fish, elvish and PowerShell.

use std::ffi::OsString;

use clap_complete::CompletionCandidate;
use specauth::Loader;
use specauth::session::{Profiles, TokenStore};

/// The words being completed: what follows `--` on a `COMPLETE=… specauth -- specauth …`
/// command line, without the program name.
fn words() -> Vec<String> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let start = args.iter().position(|a| a == "--").map_or(1, |i| i + 2);
    args.iter()
        .skip(start)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The loader with every `--specs DIR` already typed.
fn loader(words: &[String]) -> Loader {
    words
        .windows(2)
        .filter(|w| w[0] == "--specs")
        .fold(Loader::new(), |l, w| l.with_dir(&w[1]))
}

/// The value of `--flag VALUE` (or `--flag=VALUE`) already typed, else the environment's.
fn flag_or_env(words: &[String], flag: &str, env: &str) -> Option<std::path::PathBuf> {
    let prefix = format!("{flag}=");
    words
        .windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .or_else(|| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(&prefix).map(str::to_owned))
        })
        .or_else(|| std::env::var(env).ok())
        .map(Into::into)
}

/// Provider ids: bundled, and from any `--specs` folder on the line.
pub(crate) fn providers() -> Vec<CompletionCandidate> {
    let words = words();
    let loader = loader(&words);
    loader
        .ids()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The grants of the provider already on the line (`token PROVIDER <Tab>`).
pub(crate) fn grants() -> Vec<CompletionCandidate> {
    let words = words();
    let loader = loader(&words);
    // The first word after the subcommand that is neither a flag nor a flag's value is the
    // provider.
    const TAKE_VALUES: &[&str] = &[
        "--specs",
        "--store",
        "--config",
        "--set",
        "--endpoint",
        "--profile",
        "--timeout",
    ];
    let mut positional = words.iter().enumerate().filter(|(i, w)| {
        let value_of_flag = *i > 0 && TAKE_VALUES.contains(&words[i - 1].as_str());
        !(w.starts_with('-') || value_of_flag)
    });
    let _command = positional.next();
    let Some((_, provider)) = positional.next() else {
        return Vec::new();
    };
    match loader.load(provider) {
        Ok(spec) => spec.grant_names().map(CompletionCandidate::new).collect(),
        Err(_) => Vec::new(),
    }
}

/// Profile names: those in the profiles file and those with a cached token.
pub(crate) fn profiles() -> Vec<CompletionCandidate> {
    let words = words();
    let mut names: Vec<String> = vec!["default".to_owned()];
    let config = flag_or_env(&words, "--config", "SPECAUTH_CONFIG").or_else(Profiles::default_path);
    if let Some(path) = config
        && let Ok(profiles) = Profiles::load(&path)
    {
        names.extend(profiles.names());
    }
    let store = flag_or_env(&words, "--store", "SPECAUTH_STORE").or_else(TokenStore::default_root);
    if let Some(root) = store
        && let Ok(entries) = TokenStore::new(root).list()
    {
        names.extend(entries.into_iter().map(|e| e.profile));
    }
    names.sort();
    names.dedup();
    names.into_iter().map(CompletionCandidate::new).collect()
}
