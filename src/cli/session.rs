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
    /// Give up after this many seconds: waiting for another process's refresh, and the
    /// refresh exchange each.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

#[derive(Args, Debug)]
pub(crate) struct LogoutArgs {
    /// Provider id (or spec path).
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
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let client = client(30);
    let timeout = Duration::from_secs(args.timeout);
    let (token, used) = if args.device {
        let options = DeviceOptions {
            timeout,
            slow_down_step: Duration::from_secs(args.slow_down_step),
            ..DeviceOptions::default()
        };
        let token = session::device_login(
            &client,
            &spec,
            &inputs,
            &options,
            &SystemClock::default(),
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
        (token, inputs)
    } else {
        let options = BrowserOptions {
            port: args.port,
            timeout,
        };
        let login = session::BrowserLogin::start(&spec, &inputs, &options)?;
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
        (done.token, done.inputs)
    };
    let entry = StoredToken::new(&spec, &args.inputs.profile, token, &used);
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
    outln!("{}", summary(&entry))?;
    Ok(exit::OK)
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

pub(crate) fn print_token(ctx: &Ctx, args: &PrintTokenArgs) -> Result<u8, Error> {
    let store = ctx
        .store()?
        .with_lock_timeout(Duration::from_secs(args.timeout));
    let profile = &args.inputs.profile;
    // The fast path reads only the cache: no spec is loaded while the token is fresh.
    if !specauth::spec::is_path(&args.provider)
        && let Some(entry) = store.load(&args.provider, profile)?
        && !entry.token.expires_within(session::now(), args.min_valid)
    {
        outln!("{}", super::printable(entry.token.access_token.secret()))?;
        return Ok(exit::OK);
    }
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let entry = session::fresh_token(
        &client(args.timeout),
        &spec,
        &store,
        profile,
        &inputs,
        args.min_valid,
    )?;
    outln!("{}", super::printable(entry.token.access_token.secret()))?;
    Ok(exit::OK)
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
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    match session::logout(&client(30), &spec, &store, profile, &inputs, args.force)? {
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
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let profile = &args.inputs.profile;
    let inputs = session::token_request_inputs(&spec, &store, profile, &inputs, which(args))?;
    session::revoke(&client(30), &spec, &store, profile, &inputs)?;
    errln!("Revoked.");
    Ok(exit::OK)
}

pub(crate) fn introspect(ctx: &Ctx, args: &TokenOpArgs) -> Result<u8, Error> {
    let (spec, inputs) = ctx.spec_and_inputs(&args.provider, &args.inputs)?;
    let store = ctx.store()?;
    let inputs =
        session::token_request_inputs(&spec, &store, &args.inputs.profile, &inputs, which(args))?;
    match client(30).send(&spec, RequestKind::Introspection, &inputs)? {
        Outcome::Introspection(i) => outln!("{}", i.claims)?,
        other => outln!("{}", other.to_json(false))?,
    }
    Ok(exit::OK)
}
