//! `login`, `print-token`, `tokens`, `logout`, `revoke`, `introspect`: the token cache at work.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use specauth::{
    DevicePoll, Error, Inputs, Pkce, RedirectListener, Spec, StoredToken, Token, TransportError,
    TransportErrorKind, random_string,
};

use super::{Ctx, InputArgs, client, exit};

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// Bundled provider id, an id from a --specs folder, or a path to a spec file.
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Port of the redirect listener on 127.0.0.1 (default: the redirect_uri's, or a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// Use the device authorization flow (RFC 8628) instead of a browser redirect.
    #[arg(long)]
    device: bool,
    /// Give up after this many seconds without a redirect or an approved device code.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout: u64,
    /// Seconds added to the device polling interval on `slow_down` (RFC 8628 says 5).
    #[arg(long, value_name = "SECONDS", default_value_t = 5, hide = true)]
    slow_down_step: u64,
}

#[derive(Args, Debug)]
pub(crate) struct PrintTokenArgs {
    /// Provider id (or spec path).
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    min_valid: u64,
}

#[derive(Args, Debug)]
pub(crate) struct ProfileArgs {
    /// Provider id (or spec path).
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
}

#[derive(Args, Debug)]
pub(crate) struct TokenOpArgs {
    /// Provider id (or spec path).
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Which cached token: `access` or `refresh` (default: refresh when there is one).
    #[arg(long, value_parser = ["access", "refresh"])]
    which: Option<String>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What to cache for refreshing: the non-secret inputs the user gave, never generated ones.
fn inputs_to_keep(spec: &Spec, inputs: &Inputs) -> BTreeMap<String, String> {
    const PER_LOGIN: &[&str] = &[
        "state",
        "code_challenge",
        "code_challenge_method",
        "code",
        "token",
    ];
    inputs
        .iter()
        .filter(|(k, _)| !PER_LOGIN.contains(k))
        .filter(|(k, _)| spec.inputs().any(|(n, d)| n == *k && !d.secret))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn declares(spec: &Spec, name: &str) -> bool {
    spec.inputs().any(|(n, _)| n == name)
}

fn summary(entry: &StoredToken) -> serde_json::Value {
    json!({
        "provider": entry.provider,
        "profile": entry.profile,
        "token_type": entry.token.token_type,
        "expires_at": entry.token.expires_at,
        "refreshable": entry.token.refresh_token.is_some(),
        "scope": entry.token.scope,
    })
}

pub(crate) fn login(ctx: &Ctx, args: &LoginArgs) -> Result<u8, Error> {
    let (spec, mut inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let client = client(30);
    let token = if args.device {
        device_login(&spec, &inputs, args, &client)?
    } else {
        browser_login(&spec, &mut inputs, args, &client)?
    };
    let entry = StoredToken {
        provider: spec.id().to_owned(),
        profile: args.inputs.profile.clone(),
        token,
        inputs: inputs_to_keep(&spec, &inputs),
        obtained_at: now(),
    };
    // Under the lock: a refresh in flight in another process must not overwrite this login.
    let lock = store.lock(&entry.provider, &entry.profile)?;
    store.save(&entry)?;
    drop(lock);
    eprintln!(
        "Signed in to {} (profile `{}`); the token is cached in {}.",
        spec.name(),
        entry.profile,
        store.root().display()
    );
    println!("{}", summary(&entry));
    Ok(exit::OK)
}

fn browser_login(
    spec: &Spec,
    inputs: &mut Inputs,
    args: &LoginArgs,
    client: &specauth::Client,
) -> Result<Token, Error> {
    if !spec.supports_authorize() {
        return Err(Error::Usage(format!(
            "spec `{}` has no authorization endpoint: use --device, or give --endpoint authorize=URL",
            spec.id()
        )));
    }
    // Listen where the registered redirect_uri points, when one is given.
    let (port, path) = match inputs.get("redirect_uri") {
        Some(uri) => loopback_port_and_path(uri)?,
        None => (0, "/callback".to_owned()),
    };
    let listener = RedirectListener::bind(args.port.unwrap_or(port), &path)?;
    if inputs.get("redirect_uri").is_none() || args.port.is_some() {
        inputs.set("redirect_uri", listener.redirect_uri());
    }
    let state = random_string(32)?;
    let pkce = Pkce::new()?;
    let mut auth_inputs = inputs.clone();
    auth_inputs.set("state", &state);
    if declares(spec, "code_challenge") {
        auth_inputs.set("code_challenge", pkce.challenge());
        auth_inputs.set("code_challenge_method", pkce.method());
    }
    let url = spec.authorize_url(&auth_inputs)?;
    let opened = !args.no_browser && open_browser(&url);
    let mut err = std::io::stderr().lock();
    if opened {
        let _ = writeln!(
            err,
            "Opened your browser to sign in. If it did not open, visit:\n  {url}"
        );
    } else {
        let _ = writeln!(err, "Open this URL in a browser to sign in:\n  {url}");
    }
    let _ = writeln!(
        err,
        "Waiting for the redirect to {} …",
        listener.redirect_uri()
    );
    drop(err);
    let code = listener.wait_for_code(&state, Duration::from_secs(args.timeout))?;
    let mut token_inputs = inputs.clone();
    token_inputs.set("code", code.secret());
    if declares(spec, "code_verifier") {
        token_inputs.set("code_verifier", pkce.verifier().secret());
    }
    client.token(spec, "authorization_code", &token_inputs)
}

/// The port and path of a loopback `redirect_uri`; any other redirect cannot reach us.
fn loopback_port_and_path(uri: &str) -> Result<(u16, String), Error> {
    let parsed: http::Uri = uri.parse().map_err(|_| Error::Input {
        name: "redirect_uri".into(),
        problem: format!("`{uri}` is not a URL"),
    })?;
    let host = parsed.host().unwrap_or("");
    if parsed.scheme_str() != Some("http")
        || !(host == "127.0.0.1" || host == "localhost" || host == "[::1]")
    {
        return Err(Error::Input {
            name: "redirect_uri".into(),
            problem: format!(
                "`{uri}` is not an http:// loopback address, so the redirect cannot reach specauth; register one such as http://127.0.0.1:8765/callback, or use --device"
            ),
        });
    }
    Ok((parsed.port_u16().unwrap_or(80), parsed.path().to_owned()))
}

fn open_browser(url: &str) -> bool {
    let candidates: &[(&str, &[&str])] = if cfg!(target_os = "macos") {
        &[("open", &[])]
    } else if cfg!(windows) {
        &[("cmd", &["/C", "start", ""])]
    } else {
        &[("xdg-open", &[])]
    };
    candidates.iter().any(|(cmd, pre)| {
        std::process::Command::new(cmd)
            .args(*pre)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn device_login(
    spec: &Spec,
    inputs: &Inputs,
    args: &LoginArgs,
    client: &specauth::Client,
) -> Result<Token, Error> {
    let reply = client.send_request(spec, "device_authorization", inputs)?;
    let device = spec.normalise_device(inputs, &reply)?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "To sign in, open {} and enter the code {}",
        device.verification_uri, device.user_code
    );
    if let Some(complete) = &device.verification_uri_complete {
        let _ = writeln!(err, "(or open {complete})");
    }
    drop(err);
    let lifetime = device.expires_in.unwrap_or(args.timeout).min(args.timeout);
    let deadline = Instant::now() + Duration::from_secs(lifetime);
    // An interval of 0 would poll in a busy loop; a second is the least any provider means.
    let mut interval = device.interval.max(1);
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        if Instant::now() > deadline {
            return Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!("the device code was not approved within {lifetime} s"),
            )
            .into());
        }
        match client.poll_device(spec, inputs, &device)? {
            DevicePoll::Token(token) => return Ok(*token),
            DevicePoll::Pending => {}
            DevicePoll::SlowDown => interval += args.slow_down_step,
        }
    }
}

pub(crate) fn print_token(ctx: &Ctx, args: &PrintTokenArgs) -> Result<u8, Error> {
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    // The fast path reads only the cache: no spec is loaded while the token is fresh.
    let is_id = !args.provider.contains('/') && !args.provider.ends_with(".yaml");
    if is_id
        && let Some(entry) = store.load(&args.provider, profile)?
        && !entry.token.expires_within(now(), args.min_valid)
    {
        println!("{}", entry.token.access_token.secret());
        return Ok(exit::OK);
    }
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let entry =
        client(30).fresh_token(&spec, &store, spec.id(), profile, &inputs, args.min_valid)?;
    println!("{}", entry.token.access_token.secret());
    Ok(exit::OK)
}

pub(crate) fn tokens(ctx: &Ctx) -> Result<u8, Error> {
    let store = ctx.store()?;
    let entries = store.list()?;
    if ctx.json {
        println!(
            "{}",
            serde_json::Value::Array(entries.iter().map(summary).collect())
        );
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        eprintln!("No cached tokens in {}.", store.root().display());
    }
    let now = now();
    for e in &entries {
        let expiry = match e.token.expires_at {
            Some(at) if at <= now => "expired".to_owned(),
            Some(at) => format!("expires in {} s", at - now),
            None => "no expiry".to_owned(),
        };
        println!(
            "{:<16} {:<12} {:<18} {}",
            e.provider,
            e.profile,
            expiry,
            if e.token.refresh_token.is_some() {
                "refreshable"
            } else {
                ""
            }
        );
    }
    Ok(exit::OK)
}

pub(crate) fn logout(ctx: &Ctx, args: &ProfileArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    // Under the lock: a refresh in flight finishes first, so the token it saves is the one
    // revoked and forgotten, rather than reappearing after the logout.
    let _lock = match store.load(spec.id(), profile)? {
        Some(_) => Some(store.lock(spec.id(), profile)?),
        None => None,
    };
    let Some(entry) = store.load(spec.id(), profile)? else {
        eprintln!("No cached token for {} (profile `{profile}`).", spec.id());
        return Ok(exit::OK);
    };
    let mut failure = None;
    if spec.request_names().any(|r| r == "revoke") {
        let mut tokens = vec![("refresh_token", entry.token.refresh_token.clone())];
        tokens.push(("access_token", Some(entry.token.access_token.clone())));
        for (hint, token) in tokens {
            let Some(token) = token else { continue };
            if let Err(e) = revoke_one(&spec, &entry, &inputs, token.secret(), hint) {
                failure = Some(e);
            }
        }
    }
    store.remove(spec.id(), profile)?;
    eprintln!(
        "Forgot the cached token of {} (profile `{profile}`).",
        spec.id()
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(exit::OK),
    }
}

fn revoke_one(
    spec: &Spec,
    entry: &StoredToken,
    inputs: &Inputs,
    token: &str,
    hint: &str,
) -> Result<(), Error> {
    let mut req = entry.inputs_with(inputs);
    set_token(spec, &mut req, token, hint);
    let reply = client(30).send_request(spec, "revoke", &req)?;
    spec.normalise_revocation(&req, &reply)
}

/// The token a revoke/introspect acts on: `--set token=…`, or the cached one.
fn target_token(ctx: &Ctx, args: &TokenOpArgs) -> Result<(Spec, Inputs), Error> {
    let (spec, mut inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    if inputs.get("token").is_none() {
        let store = ctx.store()?;
        let entry = store
            .load(spec.id(), &args.inputs.profile)?
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no cached token for `{}`: log in first, or give --set token=…",
                    spec.id()
                ))
            })?;
        let (token, hint) = match (args.which.as_deref(), &entry.token.refresh_token) {
            (Some("access"), _) | (None, None) => {
                (entry.token.access_token.clone(), "access_token")
            }
            (_, Some(r)) => (r.clone(), "refresh_token"),
            (Some(_), None) => {
                return Err(Error::Usage("the cached token has no refresh token".into()));
            }
        };
        inputs = entry.inputs_with(&inputs);
        set_token(&spec, &mut inputs, token.secret(), hint);
    }
    Ok((spec, inputs))
}

/// The token a revoke or introspect request is about, with its hint where the spec takes one.
fn set_token(spec: &Spec, inputs: &mut Inputs, token: &str, hint: &str) {
    inputs.set("token", token);
    if declares(spec, "token_type_hint") {
        inputs.set("token_type_hint", hint);
    }
}

pub(crate) fn revoke(ctx: &Ctx, args: &TokenOpArgs) -> Result<u8, Error> {
    let (spec, inputs) = target_token(ctx, args)?;
    let reply = client(30).send_request(&spec, "revoke", &inputs)?;
    spec.normalise_revocation(&inputs, &reply)?;
    eprintln!("Revoked.");
    Ok(exit::OK)
}

pub(crate) fn introspect(ctx: &Ctx, args: &TokenOpArgs) -> Result<u8, Error> {
    let (spec, inputs) = target_token(ctx, args)?;
    let reply = client(30).send_request(&spec, "introspect", &inputs)?;
    let (_, value) = spec.normalise_introspection(&inputs, &reply)?;
    println!("{value}");
    Ok(exit::OK)
}
