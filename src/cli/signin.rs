//! The sign-in extras of `login` and `print-token`: resource indicators (RFC 8707), DPoP
//! (RFC 9449), and signing in to MCP servers.

use clap::Args;
use specauth::Error;
use specauth::session::StoredToken;
use specauth::store::Store as _;

use super::exit;

/// `print-token` flags for tokens bound to resources or to a DPoP key.
#[derive(Args, Debug, Default)]
pub(crate) struct PrintTokenExtra {
    /// Only a token requested for this resource (RFC 8707); refused when the cached token was
    /// obtained for other resources.
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

/// `login --mcp URL`: sign in to an MCP server.
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
    let given = |name: &str| -> Option<String> {
        args.inputs
            .set
            .iter()
            .rev()
            .find_map(|s| s.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
            .or_else(|| std::env::var(specauth::inputs::env_var_name(name)).ok())
            .filter(|v| !v.is_empty())
    };
    let spec_id = format!("mcp-{}", specauth::discovery::id_from_issuer(server));
    let spec_path = dir.join(format!("{spec_id}.yaml"));
    // A former dynamic registration, kept in the spec that login wrote.
    let registered = specauth::Spec::from_file(&spec_path).ok().and_then(|spec| {
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
