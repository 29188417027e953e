//! The cached token in the protocols tools already speak: git's credential helper, kubectl's
//! exec credential plugin and Docker's credential helper. Each serves the token `print-token`
//! would print (refreshed first when it is about to expire) and never stores a secret of its own.

use std::io::Read as _;

use clap::Args;
use serde_json::json;
use specauth::Error;
use specauth::error::NotSignedInReason;
use specauth::session::StoredToken;
use specauth::store::Store;

use super::format::scheme;
use super::session::valid_token;
use super::{Ctx, InputArgs, exit};

/// The most read from a tool on stdin: git and Docker send a few short lines.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// What a tool sends on stdin, bounded.
fn read_request(what: &str) -> Result<String, Error> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_REQUEST_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Error::Usage(format!("reading {what} from stdin: {e}")))?;
    Ok(text)
}

// Options shared by the adapters: how fresh the token must be, and how long to wait.
// (Not a doc comment: see `defer` on `cli::Command`.)
#[derive(Args, Debug)]
pub(crate) struct Freshness {
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) min_valid: u64,
    /// Give up after this many seconds (waiting for another process's refresh, and the
    /// refresh exchange each).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

// ---------------------------------------------------------------------------------------------
// git
// ---------------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub(crate) struct CredentialArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    /// What git asks: `get` a credential, `store` one that worked, `erase` one that failed.
    #[arg(value_parser = ["get", "store", "erase"])]
    operation: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// The user name answered beside the token (default: the one git asks with, else
    /// `oauth2`). Not used when git accepts a bearer `authtype`.
    #[arg(long)]
    username: Option<String>,
    #[command(flatten)]
    freshness: Freshness,
}

/// git's `key=value` lines (gitcredentials(7)): the last value of each key, and every
/// `capability[]`.
struct GitRequest {
    pairs: Vec<(String, String)>,
}

impl GitRequest {
    fn parse(text: &str) -> GitRequest {
        let pairs = text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_end_matches('\r').to_owned()))
            .collect();
        GitRequest { pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn offers(&self, capability: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| k == "capability[]" && v == capability)
    }
}

/// A value git's line protocol can carry: no line break, no NUL.
fn git_value<'a>(what: &str, value: &'a str) -> Result<&'a str, Error> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(Error::Usage(format!(
            "the {what} holds a line break or NUL, which git's credential protocol cannot carry"
        )));
    }
    Ok(value)
}

pub(crate) fn credential(ctx: &Ctx, args: &CredentialArgs) -> Result<u8, Error> {
    let request = GitRequest::parse(&read_request("git's credential request")?);
    match args.operation.as_str() {
        "get" => {
            let entry = valid_token(
                ctx,
                &args.provider,
                &args.inputs,
                args.freshness.min_valid,
                args.freshness.timeout,
            )?;
            refuse_dpop_bound(&entry, "git")?;
            let token = &entry.token;
            let secret = git_value("token", token.access_token.secret())?;
            let mut reply = String::new();
            if request.offers("authtype") {
                // git ≥ 2.46 sends `Authorization: <authtype> <credential>` as it is.
                reply.push_str("capability[]=authtype\n");
                reply.push_str(&format!("authtype={}\n", git_value("type", scheme(token))?));
                reply.push_str(&format!("credential={secret}\n"));
            } else {
                let username = args
                    .username
                    .as_deref()
                    .or(request.get("username"))
                    .unwrap_or("oauth2");
                reply.push_str(&format!("username={}\n", git_value("user name", username)?));
                reply.push_str(&format!("password={secret}\n"));
            }
            if let Some(at) = token.expires_at {
                // git drops a password past this time instead of sending it.
                reply.push_str(&format!("password_expiry_utc={at}\n"));
            }
            out!("{reply}")?;
        }
        // The token is specauth's own: nothing to keep from git.
        "store" => {}
        _ => {
            // The server refused a token: when it is the one cached, the next `get` must not
            // serve it again.
            let rejected = request.get("credential").or(request.get("password"));
            if let Some(rejected) = rejected {
                let store = ctx.store()?;
                let provider = provider_key(ctx, &args.provider)?;
                forget_access_token(&store, &provider, &args.inputs.profile, rejected)?;
            }
        }
    }
    Ok(exit::OK)
}

/// Refuses a DPoP-bound token to a tool that can only send it as it is: every request with
/// such a token needs a fresh proof for its method and URL (RFC 9449 §7), which git, kubectl
/// and Docker cannot make, so the token would only be refused by the server.
pub(crate) fn refuse_dpop_bound(entry: &StoredToken, tool: &str) -> Result<(), Error> {
    if entry.dpop_key.is_none() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "the cached token of `{}` (profile `{}`) is bound to a DPoP key (RFC 9449): each request needs a fresh proof, which {tool} cannot send; use `specauth curl` or `specauth print-token --dpop METHOD URL`, or sign in without --dpop under another --profile for {tool}",
        entry.provider, entry.profile
    )))
}

/// The cache key of `provider`: the id itself, or the id a spec file declares.
pub(crate) fn provider_key(ctx: &Ctx, provider: &str) -> Result<String, Error> {
    if specauth::spec::is_path(provider) {
        Ok(ctx.loader.load(provider)?.id().to_owned())
    } else {
        Ok(provider.to_owned())
    }
}

/// Marks the cached access token of `provider` + `profile` expired when it is `rejected`, so
/// the next use refreshes it (or asks for a sign-in when it cannot be refreshed). A token
/// specauth did not serve is left alone. Whether it was the cached one.
fn forget_access_token(
    store: &(impl Store + ?Sized),
    provider: &str,
    profile: &str,
    rejected: &str,
) -> Result<bool, Error> {
    if store.load(provider, profile)?.is_none() {
        return Ok(false);
    }
    let _lock = store.lock(provider, profile)?;
    let Some(mut entry) = store.load(provider, profile)? else {
        return Ok(false);
    };
    if entry.token.access_token.secret() != rejected {
        return Ok(false);
    }
    entry.token.expires_at = Some(0);
    entry.token.expires_in = Some(0);
    store.save(&entry)?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub(crate) struct KubeArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// When kubectl runs interactively and no token is cached, sign in with the device flow
    /// instead of the browser.
    #[arg(long)]
    device: bool,
    #[command(flatten)]
    freshness: Freshness,
}

/// The API versions of `ExecCredential` this plugin answers.
const KUBE_VERSIONS: &[&str] = &[
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

pub(crate) fn kube(ctx: &Ctx, args: &KubeArgs) -> Result<u8, Error> {
    // kubectl describes the call in KUBERNETES_EXEC_INFO: the API version it expects, and
    // whether a person is there to sign in.
    let info: serde_json::Value = match std::env::var("KUBERNETES_EXEC_INFO") {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "KUBERNETES_EXEC_INFO is not an ExecCredential: {e}"
            ))
        })?,
        Err(_) => json!({}),
    };
    let api_version = info["apiVersion"].as_str().unwrap_or(KUBE_VERSIONS[0]);
    if !KUBE_VERSIONS.contains(&api_version) {
        return Err(Error::Usage(format!(
            "kubectl asks for ExecCredential {api_version}; this plugin speaks {}",
            KUBE_VERSIONS.join(" and ")
        )));
    }
    let interactive = info["spec"]["interactive"].as_bool().unwrap_or(false);
    let fresh = || {
        valid_token(
            ctx,
            &args.provider,
            &args.inputs,
            args.freshness.min_valid,
            args.freshness.timeout,
        )
    };
    let entry = match fresh() {
        // A person is at the terminal: sign in now, as `specauth login` would.
        Err(Error::NotSignedIn { .. }) if interactive => {
            super::session::sign_in(ctx, &args.provider, &args.inputs, args.device)?;
            fresh()?
        }
        other => other?,
    };
    refuse_dpop_bound(&entry, "kubectl")?;
    outln!("{}", exec_credential(api_version, &entry)?)?;
    Ok(exit::OK)
}

/// The `ExecCredential` kubectl reads: `status.token`, and `status.expirationTimestamp` in
/// RFC 3339 when the expiry is known (kubectl then asks again after it).
fn exec_credential(api_version: &str, entry: &StoredToken) -> Result<serde_json::Value, Error> {
    let mut status = json!({ "token": entry.token.access_token.secret() });
    if let Some(at) = entry.token.expires_at {
        status["expirationTimestamp"] = json!(rfc3339(at)?);
    }
    Ok(json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": status,
    }))
}

fn rfc3339(epoch: u64) -> Result<String, Error> {
    let bad = |e: String| Error::Usage(format!("expiry {epoch} cannot be shown as a date: {e}"));
    let at = i64::try_from(epoch)
        .map_err(|e| bad(e.to_string()))
        .and_then(|s| {
            time::OffsetDateTime::from_unix_timestamp(s).map_err(|e| bad(e.to_string()))
        })?;
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| bad(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub(crate) struct DockerArgs {
    /// What Docker asks: `get`, `store`, `erase` or `list`.
    #[arg(value_parser = ["get", "store", "erase", "list"])]
    operation: String,
    /// The provider (default: the cached token whose profile is named after the registry
    /// host, e.g. `--profile registry.gitlab.com` at login).
    #[arg(long, add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: Option<String>,
    /// The profile (default: the registry host, `:` written `_`: `localhost_5000`).
    #[arg(long, add = clap_complete::ArgValueCandidates::new(super::complete::profiles))]
    profile: Option<String>,
    /// The user name answered beside the token.
    #[arg(long, default_value = "oauth2accesstoken")]
    username: String,
    #[command(flatten)]
    freshness: Freshness,
}

/// What Docker's clients look for to tell "no credentials" from a failure.
const DOCKER_NOT_FOUND: &str = "credentials not found in native keychain";

/// The profile a registry's token is cached under: its host (and port, `:` written `_`),
/// lower case. `https://registry.example.com/v2/` → `registry.example.com`.
pub(crate) fn registry_profile(server_url: &str) -> String {
    let rest = server_url
        .trim()
        .split_once("://")
        .map_or(server_url.trim(), |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.to_ascii_lowercase().replace(':', "_")
}

/// Whether a profile name is a registry host (has a dot, or is `localhost`).
fn is_registry_profile(profile: &str) -> bool {
    profile.contains('.') || profile == "localhost" || profile.starts_with("localhost_")
}

pub(crate) fn docker(ctx: &Ctx, args: &DockerArgs) -> Result<u8, Error> {
    // Docker shows a helper's stdout when it fails, not its stderr.
    match docker_op(ctx, args) {
        Ok(code) => Ok(code),
        Err(DockerFailure::NotFound(why)) => {
            errln!("specauth: {why}");
            outln!("{DOCKER_NOT_FOUND}")?;
            Ok(exit::SIGN_IN)
        }
        Err(DockerFailure::Other(e)) => {
            let code = super::exit_code(&e);
            textln!("{e}")?;
            super::report(&e, ctx.json);
            Ok(code)
        }
    }
}

enum DockerFailure {
    NotFound(String),
    Other(Error),
}

impl From<Error> for DockerFailure {
    fn from(e: Error) -> Self {
        match e {
            Error::NotSignedIn {
                reason: NotSignedInReason::NoEntry,
                ref provider,
                ref profile,
                ..
            } => DockerFailure::NotFound(format!(
                "{e}; run `{}` first",
                super::login_command(provider, profile)
            )),
            e => DockerFailure::Other(e),
        }
    }
}

/// `{"ServerURL", "Username", "Secret"}`, as Docker's credential helpers read and write it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerCredential {
    #[serde(rename = "ServerURL")]
    server_url: String,
    secret: Option<String>,
}

fn docker_op(ctx: &Ctx, args: &DockerArgs) -> Result<u8, DockerFailure> {
    match args.operation.as_str() {
        "get" => {
            let server_url = read_request("the registry's URL")?.trim().to_owned();
            let (provider, profile) = docker_target(ctx, args, &server_url)?;
            let inputs = InputArgs::for_profile(&profile);
            let entry = valid_token(
                ctx,
                &provider,
                &inputs,
                args.freshness.min_valid,
                args.freshness.timeout,
            )?;
            refuse_dpop_bound(&entry, "Docker")?;
            outln!(
                "{}",
                json!({
                    "ServerURL": server_url,
                    "Username": args.username,
                    "Secret": entry.token.access_token.secret(),
                })
            )?;
        }
        "list" => {
            let store = ctx.store()?;
            let mut listed = serde_json::Map::new();
            for entry in store.list()? {
                let chosen = match (&args.provider, &args.profile) {
                    (Some(p), Some(q)) => &entry.provider == p && &entry.profile == q,
                    (Some(p), None) => &entry.provider == p && is_registry_profile(&entry.profile),
                    (None, _) => is_registry_profile(&entry.profile),
                };
                if chosen {
                    let host = entry.profile.replace('_', ":");
                    listed.insert(format!("https://{host}"), json!(args.username));
                }
            }
            outln!("{}", serde_json::Value::Object(listed))?;
        }
        "store" => {
            let given: DockerCredential = serde_json::from_str(&read_request("the credential")?)
                .map_err(|e| Error::Usage(format!("not a Docker credential: {e}")))?;
            let (provider, profile) = docker_target(ctx, args, &given.server_url)?;
            let cached = ctx.store()?.load(&provider, &profile)?;
            // `docker login` stores what `get` gave it: that is already cached.
            let same = cached
                .as_ref()
                .zip(given.secret.as_deref())
                .is_some_and(|(c, s)| c.token.access_token.secret() == s);
            if !same {
                return Err(DockerFailure::Other(Error::Usage(format!(
                    "specauth keeps no registry passwords; it serves the token of `{}`",
                    super::login_command(&provider, &profile)
                ))));
            }
        }
        // `docker logout`: the token stays until `specauth logout`, which also revokes it.
        _ => {
            let _ = read_request("the registry's URL")?;
        }
    }
    Ok(exit::OK)
}

/// The provider and profile serving `server_url`: the ones given, or the cached entry whose
/// profile is named after the registry host.
fn docker_target(
    ctx: &Ctx,
    args: &DockerArgs,
    server_url: &str,
) -> Result<(String, String), DockerFailure> {
    let profile = args
        .profile
        .clone()
        .unwrap_or_else(|| registry_profile(server_url));
    if let Some(provider) = &args.provider {
        return Ok((provider.clone(), profile));
    }
    let store = ctx.store()?;
    let matches: Vec<String> = store
        .list()?
        .into_iter()
        .filter(|e| e.profile == profile)
        .map(|e| e.provider)
        .collect();
    match matches.as_slice() {
        [one] => Ok((one.clone(), profile)),
        [] => Err(DockerFailure::NotFound(format!(
            "no cached token has the profile `{profile}` of registry `{server_url}`; run `specauth login PROVIDER --profile {profile}` first"
        ))),
        many => Err(DockerFailure::Other(Error::Usage(format!(
            "profile `{profile}` is cached for several providers ({}); choose one with --provider",
            many.join(", ")
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_map_to_their_host_profile() {
        for (url, profile) in [
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("registry.example.com", "registry.example.com"),
            ("http://LOCALHOST:5000/v2/", "localhost_5000"),
            ("ghcr.io\n", "ghcr.io"),
        ] {
            assert_eq!(registry_profile(url), profile, "{url}");
        }
        assert!(is_registry_profile("localhost_5000"));
        assert!(!is_registry_profile("default"));
    }

    #[test]
    fn git_requests_keep_the_last_value_and_every_capability() {
        let r = GitRequest::parse(
            "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=a\nhost=b\n\nusername=late\n",
        );
        assert!(r.offers("authtype") && r.offers("state") && !r.offers("x"));
        assert_eq!(r.get("host"), Some("b"));
        assert_eq!(r.get("username"), None, "nothing after the blank line");
        assert!(git_value("token", "a\nb").is_err());
    }

    #[test]
    fn authorization_uses_the_token_type() {
        let t = specauth::Token::bearer(specauth::Secret::new("t"));
        assert_eq!(super::super::format::authorization(&t), "Bearer t");
    }
}
