//! The sign-in extras of `login` and `print-token`: resource indicators (RFC 8707), DPoP
//! (RFC 9449), and signing in to MCP servers.

use clap::Args;
use specauth::Error;
use specauth::session::StoredToken;
use specauth::store::Store as _;

use super::exit;

// `print-token` flags for tokens bound to resources or to a DPoP key.
// (Not a doc comment: see `defer` on `cli::Command`.)
#[derive(Args, Debug, Default)]
pub(crate) struct PrintTokenExtra {
    /// A token requested for this resource (RFC 8707): the --profile's when it was, else the
    /// provider's other cached profile that was (the most recently obtained of several);
    /// refused when none was.
    #[arg(long, value_name = "URI")]
    pub(crate) resource: Option<String>,
    /// For a DPoP-bound token: print the two headers of a request of METHOD to URL,
    /// `Authorization: DPoP …` and `DPoP: <proof>`, instead of the bare token.
    #[arg(long, num_args = 2, value_names = ["METHOD", "URL"])]
    pub(crate) dpop: Option<Vec<String>>,
    /// With --dpop: the resource server's last DPoP-Nonce, when it asked for one.
    #[arg(long, value_name = "NONCE", requires = "dpop")]
    pub(crate) dpop_nonce: Option<String>,
}

/// The inputs of `print-token --resource URI`: `given` when its profile's cached token was
/// requested for `resource`, else `given` with the profile of the provider's cached token that
/// was (of several, the most recently obtained, said on stderr). When none was, an input error
/// naming the login that gets one; when the given profile has no token at all and no other
/// does either, `given` as it is, so the sign-in-needed error (exit 4) follows as without
/// `--resource`.
pub(crate) fn profile_for_resource(
    ctx: &super::Ctx,
    provider: &str,
    given: &super::InputArgs,
    resource: &str,
) -> Result<super::InputArgs, Error> {
    let key = super::adapters::provider_key(ctx, provider)?;
    let store = ctx.store()?;
    let holds = |e: &StoredToken| e.resources.iter().any(|r| r == resource);
    let own = store.load(&key, &given.profile)?;
    if own.as_ref().is_some_and(holds) {
        return Ok(given.clone());
    }
    let mut matching: Vec<StoredToken> = store
        .list()?
        .into_iter()
        .filter(|e| e.provider == key && holds(e))
        .collect();
    // The freshest last: obtained most recently, then expiring latest.
    matching.sort_by_key(|e| (e.obtained_at, e.token.expires_at.unwrap_or(u64::MAX)));
    let Some(chosen) = matching.last() else {
        let Some(own) = own else {
            return Ok(given.clone());
        };
        let had = if own.resources.is_empty() {
            "no particular resource".to_owned()
        } else {
            own.resources.join(", ")
        };
        return Err(Error::Input {
            name: "resource".to_owned(),
            problem: format!(
                "the cached token of `{key}` (profile `{}`) was requested for {had}, not for `{resource}`, and no other profile of `{key}` holds one for it; run `{} --set resource={resource}` (under another --profile to keep both)",
                given.profile,
                super::login_command(&key, &given.profile)
            ),
        });
    };
    if matching.len() > 1 {
        let profiles: Vec<&str> = matching.iter().map(|e| e.profile.as_str()).collect();
        errln!(
            "specauth: the profiles {} of `{key}` hold tokens for `{resource}`; using `{}`, obtained most recently (choose with --profile)",
            profiles.join(", "),
            chosen.profile
        );
    }
    let mut args = given.clone();
    args.profile = chosen.profile.clone();
    Ok(args)
}

/// Prints the cached token (or its DPoP header pair) as `extra` asks.
pub(crate) fn print_entry(entry: &StoredToken, extra: &PrintTokenExtra) -> Result<u8, Error> {
    if let Some(resource) = &extra.resource
        && !entry.resources.iter().any(|r| r == resource)
    {
        let had = if entry.resources.is_empty() {
            "no particular resource".to_owned()
        } else {
            entry.resources.join(", ")
        };
        return Err(Error::Input {
            name: "resource".to_owned(),
            problem: format!(
                "the cached token of `{}` (profile `{}`) was requested for {had}, not for `{resource}`; sign in with --set resource={resource} (under another --profile to keep both)",
                entry.provider, entry.profile
            ),
        });
    }
    match extra.dpop.as_deref() {
        Some([method, url]) => {
            let Some((authorization, proof)) =
                entry.dpop_headers(method, url, extra.dpop_nonce.as_deref())?
            else {
                return Err(Error::Usage(format!(
                    "the cached token of `{}` (profile `{}`) is not bound to a DPoP key; sign in with login --dpop",
                    entry.provider, entry.profile
                )));
            };
            outln!(
                "Authorization: {}\nDPoP: {}",
                super::printable(authorization.secret()),
                super::printable(proof.secret())
            )?;
        }
        _ => outln!("{}", super::printable(entry.token.access_token.secret()))?,
    }
    Ok(exit::OK)
}

/// Adds what a summary says about resources and DPoP, when there is something
/// to say (older summaries keep their exact keys).
pub(crate) fn extend_summary(entry: &StoredToken, summary: &mut serde_json::Value) {
    if !entry.resources.is_empty() {
        summary["resources"] = serde_json::json!(entry.resources);
    }
    if entry.dpop_key.is_some() {
        summary["dpop"] = serde_json::json!(true);
    }
}

// `login --mcp URL`: sign in to an MCP server.
// (Not a doc comment: see `defer` on `cli::Command`.)
#[derive(Args, Debug, Default)]
pub(crate) struct McpArgs {
    /// Sign in to the MCP server at this URL (its protected resource metadata, its
    /// authorization server, client registration); writes the spec to the first --specs folder.
    #[arg(long, value_name = "URL", conflicts_with_all = ["provider", "device", "dpop"])]
    pub(crate) mcp: Option<String>,
    /// With --mcp: an https URL of your client ID metadata document, used as the client id
    /// where the authorization server supports such documents.
    #[arg(long, value_name = "URL", requires = "mcp")]
    pub(crate) client_metadata_url: Option<String>,
}

/// `login --mcp URL`.
pub(crate) fn mcp_login(ctx: &super::Ctx, args: &super::session::LoginArgs) -> Result<u8, Error> {
    use specauth::session::{self, BrowserOptions, McpOptions, StoredToken};
    use std::io::Write as _;
    let Some(server) = args.mcp.mcp.as_deref() else {
        return Err(Error::Usage("give a provider, or --mcp URL".to_owned()));
    };
    let Some(dir) = ctx.specs_dirs.first() else {
        return Err(Error::Usage(
            "login --mcp writes a spec for the server: give the folder with --specs DIR (and the same --specs to print-token)".to_owned(),
        ));
    };
    let spec_id = format!("mcp-{}", specauth::discovery::id_from_issuer(server));
    let spec_path = dir.join(format!("{spec_id}.yaml"));
    // The spec a former login wrote, when there is one.
    let former = specauth::Spec::from_file(&spec_path).ok();
    // A former dynamic registration, kept in that spec.
    let registered = former.as_ref().and_then(|spec| {
        let default = |name: &str| {
            spec.inputs()
                .find(|(n, _)| *n == name)
                .and_then(|(_, d)| d.default.clone())
        };
        Some((
            default("issuer")?,
            default("client_id")?,
            default("redirect_uri")?,
        ))
    });
    // The client id, secret and scope come as every command's inputs do: --set (with `-` for
    // stdin and `@FILE`), SPECAUTH_<NAME>, then the profiles file under the spec's id. Before
    // the first login there is no spec yet: the base's inputs stand in for it.
    let input_spec = match former {
        Some(spec) => spec,
        None => specauth::Spec::from_yaml(
            &format!("{spec_id}.yaml"),
            &format!("id: {spec_id}\nextends: oauth2\n"),
        )?,
    };
    let profile = ctx.profiles()?.inputs(&spec_id, &args.inputs.profile);
    let inputs = super::gather_inputs(&input_spec, profile, &args.inputs.set)?;
    let given = |name: &str| {
        inputs
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let options = McpOptions {
        client_id: given("client_id"),
        client_secret: given("client_secret").map(specauth::Secret::new),
        client_metadata_url: args.mcp.client_metadata_url.clone(),
        registered,
        client_name: "specauth".to_owned(),
        scope: given("scope"),
        browser: BrowserOptions {
            port: args.port,
            timeout: std::time::Duration::from_secs(args.timeout),
            dpop: false,
        },
    };
    let store = ctx.store()?;
    let done = session::mcp_login(&super::client(30), server, &options, |login| {
        let url = login.url();
        let shown = super::printable(url);
        let opened = !args.no_browser && super::session::open_browser(url);
        let mut err = std::io::stderr().lock();
        if opened {
            let _ = writeln!(
                err,
                "Opened your browser to sign in. If it did not open, visit:\n  {shown}"
            );
        } else {
            let _ = writeln!(err, "Open this URL in a browser to sign in:\n  {shown}");
        }
        let _ = writeln!(
            err,
            "Waiting for the redirect to {} …",
            login.redirect_uri()
        );
    })?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.clone(),
        source,
    })?;
    std::fs::write(&spec_path, &done.spec_yaml).map_err(|source| Error::Io {
        action: "write",
        path: spec_path.clone(),
        source,
    })?;
    let mut entry = StoredToken::new(
        &done.spec,
        &args.inputs.profile,
        done.logged_in.token,
        &done.logged_in.inputs,
    );
    entry.dpop_key = done.logged_in.dpop_key.map(|k| k.secret().clone());
    let lock = store.lock(&entry.provider, &entry.profile)?;
    store.save(&entry)?;
    drop(lock);
    errln!(
        "Signed in to the MCP server {server} at {} (client {}); wrote {}. Tokens: specauth --specs {} print-token {}",
        done.issuer,
        done.client_source,
        spec_path.display(),
        dir.display(),
        done.spec_id
    );
    let mut summary = super::session::summary(&entry);
    summary["mcp"] = serde_json::json!({
        "server": server,
        "issuer": done.issuer,
        "spec": spec_path,
        "client": done.client_source,
    });
    outln!("{summary}")?;
    Ok(exit::OK)
}
