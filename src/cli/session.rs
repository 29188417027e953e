//! `login`, `print-token`, `tokens`, `logout`, `revoke`, `introspect`: the token cache at work.

use std::io::Write as _;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use specauth::session::{
    self, BrowserOptions, DeviceOptions, LoggedOut, StoredToken, SystemClock, WhichToken,
};
use specauth::store::Store as _;
use specauth::{Error, Outcome, RequestKind};

use super::format::TokenFormat;
use super::{Ctx, InputArgs, client_for, exit};

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// Bundled provider id, an id from a --specs folder, or a path to a spec file.
    #[arg(
        required_unless_present = "mcp",
        add = clap_complete::ArgValueCandidates::new(super::complete::providers)
    )]
    provider: Option<String>,
    #[command(flatten)]
    pub(crate) mcp: super::signin::McpArgs,
    #[command(flatten)]
    pub(crate) inputs: InputArgs,
    /// Port of the redirect listener on 127.0.0.1 (default: the redirect_uri's, or a free one).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,
    /// Use the device authorization flow (RFC 8628) instead of a browser redirect.
    #[arg(long)]
    device: bool,
    /// Give up after this many seconds without a redirect or an approved device code.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub(crate) timeout: u64,
    /// Seconds added to the device polling interval on `slow_down` (RFC 8628 says 5).
    #[arg(long, value_name = "SECONDS", default_value_t = 5, hide = true)]
    slow_down_step: u64,
    /// Bind the token to a DPoP key (RFC 9449) kept with it; see print-token --dpop. A server
    /// that answers with a bearer token did not bind it: a warning says so, and no key is kept.
    #[arg(long)]
    dpop: bool,
}

#[derive(Args, Debug)]
pub(crate) struct PrintTokenArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Refresh first when the token expires within this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    min_valid: u64,
    /// Give up after this many seconds: waiting for another process's refresh, and the
    /// refresh exchange each.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    pub(crate) extra: super::signin::PrintTokenExtra,
    /// How to print it: the bare token, an `Authorization:` header line, JSON with its type
    /// and expiry, or shell `export` lines.
    #[arg(long, value_enum, default_value_t = TokenFormat::Bare)]
    format: TokenFormat,
}

#[derive(Args, Debug)]
pub(crate) struct LogoutArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Forget the cached token even when revoking it at the provider fails.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ProfileArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
}

#[derive(Args, Debug)]
pub(crate) struct TokenOpArgs {
    /// Provider id (or spec path).
    #[arg(add = clap_complete::ArgValueCandidates::new(super::complete::providers))]
    provider: String,
    #[command(flatten)]
    inputs: InputArgs,
    /// Which cached token: `access` or `refresh` (default: refresh when there is one).
    #[arg(long, value_parser = ["access", "refresh"])]
    which: Option<String>,
}

pub(crate) fn summary(entry: &StoredToken) -> serde_json::Value {
    let mut s = json!({
        "provider": entry.provider,
        "profile": entry.profile,
        "token_type": entry.token.token_type,
        "expires_at": entry.token.expires_at,
        "refreshable": entry.token.refresh_token.is_some(),
        "scope": entry.token.scope,
    });
    super::signin::extend_summary(entry, &mut s);
    s
}

pub(crate) fn login(ctx: &Ctx, args: &LoginArgs) -> Result<u8, Error> {
    if args.provider.is_none() {
        return super::signin::mcp_login(ctx, args);
    }
    let entry = sign_in_with(ctx, args)?;
    outln!("{}", summary(&entry))?;
    Ok(exit::OK)
}

/// Signs in as `specauth login PROVIDER [--device]` would with its defaults, for a command
/// that finds no cached token while a person is there (`kube` run interactively). Talks to
/// the person on stderr only: stdout belongs to the command.
pub(crate) fn sign_in(
    ctx: &Ctx,
    provider: &str,
    inputs: &InputArgs,
    device: bool,
) -> Result<StoredToken, Error> {
    let args = LoginArgs {
        provider: Some(provider.to_owned()),
        mcp: Default::default(),
        inputs: inputs.clone(),
        port: None,
        no_browser: false,
        device,
        timeout: 300,
        slow_down_step: 5,
        dpop: false,
    };
    sign_in_with(ctx, &args)
}

fn sign_in_with(ctx: &Ctx, args: &LoginArgs) -> Result<StoredToken, Error> {
    let Some(provider) = args.provider.as_deref() else {
        return Err(Error::Usage("give a provider, or --mcp URL".to_owned()));
    };
    let (spec, inputs) = ctx.spec_and_inputs(provider, &args.inputs)?;
    let store = ctx.store()?;
    let grant = if args.device {
        "device_code"
    } else {
        "authorization_code"
    };
    let client = client_for(30, &spec, grant, &inputs)?;
    let timeout = Duration::from_secs(args.timeout);
    let dpop_key;
    let (token, used) = if args.device {
        let options = DeviceOptions {
            timeout,
            slow_down_step: Duration::from_secs(args.slow_down_step),
            ..DeviceOptions::default()
        };
        let key = if args.dpop {
            Some(specauth::dpop::DpopKey::generate()?)
        } else {
            None
        };
        let token = session::device_login_bound(
            &client,
            &spec,
            &inputs,
            &options,
            &SystemClock::default(),
            key.as_ref(),
            |device| {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "To sign in, open {} and enter the code {}",
                    super::printable(&device.verification_uri),
                    super::printable(&device.user_code)
                );
                if let Some(complete) = &device.verification_uri_complete {
                    let _ = writeln!(err, "(or open {})", super::printable(complete));
                }
            },
        )?;
        dpop_key = key.filter(|_| specauth::dpop::binds(&token));
        (token, inputs)
    } else {
        let options = BrowserOptions {
            port: args.port,
            timeout,
            dpop: args.dpop,
        };
        let login = session::BrowserLogin::begin(&client, &spec, &inputs, &options)?;
        let url = super::printable(login.url());
        let opened = !args.no_browser && open_browser(login.url());
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
            login.redirect_uri()
        );
        drop(err);
        let done = login.finish(&client, &spec, timeout)?;
        dpop_key = done.dpop_key;
        (done.token, done.inputs)
    };
    if args.dpop && dpop_key.is_none() {
        // RFC 9449 §5: the server did not bind the token (it does not support DPoP, or not for
        // this client). It works as a bearer token, and is kept as one.
        errln!(
            "specauth: warning: {} answered token_type `{}`, not `DPoP`: it did not bind the token to the DPoP key, so the token is cached as a bearer token and no key is kept",
            spec.name(),
            token.token_type
        );
    }
    let mut entry = StoredToken::new(&spec, &args.inputs.profile, token, &used);
    entry.dpop_key = dpop_key.map(|k| k.secret().clone());
    entry.keep_client_auth(&client);
    // Refreshes go where the token came from.
    entry.endpoints = Ctx::endpoints(&args.inputs)?;
    // Under the lock: a refresh in flight in another process must not overwrite this login.
    let lock = store.lock(&entry.provider, &entry.profile)?;
    store.save(&entry)?;
    drop(lock);
    errln!(
        "Signed in to {} (profile `{}`); the token is cached in {}.",
        spec.name(),
        entry.profile,
        store.root().display()
    );
    Ok(entry)
}

pub(crate) fn open_browser(url: &str) -> bool {
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

pub(crate) fn print_token(ctx: &Ctx, args: &PrintTokenArgs) -> Result<u8, Error> {
    // `--resource` chooses the profile whose token was requested for it.
    let inputs = match &args.extra.resource {
        Some(resource) => {
            super::signin::profile_for_resource(ctx, &args.provider, &args.inputs, resource)?
        }
        None => args.inputs.clone(),
    };
    let entry = valid_token(ctx, &args.provider, &inputs, args.min_valid, args.timeout)?;
    if args.extra.dpop.is_some() {
        return super::signin::print_entry(&entry, &args.extra);
    }
    out!("{}", super::format::render(&entry.token, args.format))?;
    Ok(exit::OK)
}

/// The cached token of `provider` (profile from `inputs`), valid for `min_valid` seconds more:
/// refreshed first when needed. What `print-token` and every adapter (git, kube, docker, curl)
/// serve.
pub(crate) fn valid_token(
    ctx: &Ctx,
    provider: &str,
    inputs: &InputArgs,
    min_valid: u64,
    timeout: u64,
) -> Result<StoredToken, Error> {
    let store = ctx.store()?.with_lock_timeout(Duration::from_secs(timeout));
    let profile = &inputs.profile;
    // The fast path reads only the cache: no spec is loaded while the token is fresh.
    if !specauth::spec::is_path(provider)
        && let Some(entry) = store.load(provider, profile)?
        && !entry
            .token
            .expires_within(session::now(), min_valid.max(entry.refresh_margin))
    {
        return Ok(entry);
    }
    let (spec, inputs) = ctx.refresh_spec_and_inputs(provider, inputs)?;
    let client = client_for(timeout, &spec, "refresh_token", &inputs)?;
    session::fresh_token(&client, &spec, &store, profile, &inputs, min_valid)
}

pub(crate) fn tokens(ctx: &Ctx) -> Result<u8, Error> {
    let store = ctx.store()?;
    let entries = store.list()?;
    if ctx.json {
        outln!(
            "{}",
            serde_json::Value::Array(entries.iter().map(summary).collect())
        )?;
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        errln!("No cached tokens in {}.", store.root().display());
    }
    let now = session::now();
    for e in &entries {
        let expiry = match e.token.expires_at {
            Some(at) if at <= now => "expired".to_owned(),
            Some(at) => format!("expires in {} s", at - now),
            None => "no expiry".to_owned(),
        };
        textln!(
            "{:<16} {:<12} {:<18} {}",
            e.provider,
            e.profile,
            expiry,
            if e.token.refresh_token.is_some() {
                "refreshable"
            } else {
                ""
            }
        )?;
    }
    Ok(exit::OK)
}

pub(crate) fn logout(ctx: &Ctx, args: &LogoutArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.cached_spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    match session::logout(
        &client_for(30, &spec, "revoke", &inputs)?,
        &spec,
        &store,
        profile,
        &inputs,
        args.force,
    )? {
        LoggedOut::NothingCached => {
            errln!("No cached token for {} (profile `{profile}`).", spec.id());
            Ok(exit::OK)
        }
        LoggedOut::Forgotten { .. } => {
            errln!(
                "Forgot the cached token of {} (profile `{profile}`).",
                spec.id()
            );
            Ok(exit::OK)
        }
        LoggedOut::Kept(e) => {
            errln!(
                "Kept the cached token of {} (profile `{profile}`): revoking it failed, so it may still be live at the provider. Fix the cause and run logout again, or pass --force to forget it anyway.",
                spec.id()
            );
            Err(e)
        }
    }
}

fn which(args: &TokenOpArgs) -> WhichToken {
    match args.which.as_deref() {
        Some("access") => WhichToken::Access,
        Some("refresh") => WhichToken::Refresh,
        _ => WhichToken::Preferred,
    }
}

pub(crate) fn revoke(ctx: &Ctx, args: &TokenOpArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.cached_spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    let inputs = session::token_request_inputs(
        &spec,
        &store,
        profile,
        &inputs,
        which(args),
        &RequestKind::Revocation,
    )?;
    session::revoke(
        &client_for(30, &spec, "revoke", &inputs)?,
        &spec,
        &store,
        profile,
        &inputs,
    )?;
    errln!("Revoked.");
    Ok(exit::OK)
}

pub(crate) fn introspect(ctx: &Ctx, args: &TokenOpArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.cached_spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let inputs = session::token_request_inputs(
        &spec,
        &store,
        &args.inputs.profile,
        &inputs,
        which(args),
        &RequestKind::Introspection,
    )?;
    match client_for(30, &spec, "introspect", &inputs)?.send(
        &spec,
        RequestKind::Introspection,
        &inputs,
    )? {
        Outcome::Introspection(i) => outln!("{}", i.claims)?,
        other => outln!("{}", other.to_json(false))?,
    }
    Ok(exit::OK)
}
