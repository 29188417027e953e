//! `specauth demo`: each provider's documented exchanges, live over loopback, no credentials.
//!
//! By default one screen: a row for each of the three seed providers, then the others in one
//! row (and a row for any that did not match). `demo PROVIDER…` and `-v` print the full
//! transcript: every request, redacted, with its normalised outcome.

use specauth::testing::{LiveExchange, ReplayServer, replay_live};
use specauth::{Error, Loader, UreqTransport};

use super::exit;

/// What one provider's exchanges came to.
struct Row {
    id: String,
    featured: bool,
    exchanges: usize,
    mismatches: usize,
}

pub(crate) fn run(loader: &Loader, providers: &[String], verbose: bool) -> Result<u8, Error> {
    let server = ReplayServer::start()
        .map_err(|e| Error::Usage(format!("cannot start the local server: {e}")))?;
    let transport = UreqTransport::new();
    let transcript = verbose || !providers.is_empty();
    // Specs that say `featured: N` open the demo, in that order, each on its own row; the
    // others follow in the catalogue's order.
    let mut specs = Vec::new();
    let ids = if providers.is_empty() {
        loader.ids()
    } else {
        providers.to_vec()
    };
    for id in &ids {
        specs.push(loader.load(id)?.with_origin(&server.origin())?);
    }
    if providers.is_empty() {
        specs.sort_by_key(|s| s.featured().unwrap_or(u64::MAX));
    }
    if transcript {
        outln!(
            "specauth demo: a server on {} answers as each provider's docs show; every request below\n\
             went through the real HTTP transport. Secrets are redacted.\n",
            server.origin()
        )?;
    } else {
        outln!(
            "specauth demo: a server on {} answers as each provider's docs show, and every documented\n\
             exchange goes through the real HTTP transport. `specauth demo xee` shows one provider's\n\
             requests and replies (secrets redacted), `specauth demo -v` all of them.\n",
            server.origin()
        )?;
        outln!("{:<16} {:>9}  result", "provider", "exchanges")?;
    }
    let mut rows = Vec::new();
    for spec in &specs {
        if spec.example_count() == 0 {
            continue;
        }
        if transcript {
            textln!("━━ {} · {} ━━", spec.id(), spec.name())?;
        }
        let mut row = Row {
            id: spec.id().to_owned(),
            featured: spec.featured().is_some(),
            exchanges: 0,
            mismatches: 0,
        };
        for (i, live) in replay_live(spec, &server, &transport).iter().enumerate() {
            row.exchanges += 1;
            if !live.matches() {
                row.mismatches += 1;
            }
            if transcript {
                show(i, live)?;
            }
        }
        if transcript {
            outln!()?;
        } else if row.featured || row.mismatches > 0 {
            print_row(&row.id, row.exchanges, row.mismatches)?;
        }
        rows.push(row);
    }
    let exchanges: usize = rows.iter().map(|r| r.exchanges).sum();
    let mismatches: usize = rows.iter().map(|r| r.mismatches).sum();
    if !transcript {
        let others: Vec<&Row> = rows.iter().filter(|r| !r.featured).collect();
        if !others.is_empty() {
            print_row(
                &format!("{} more", others.len()),
                others.iter().map(|r| r.exchanges).sum(),
                others.iter().map(|r| r.mismatches).sum(),
            )?;
        }
        outln!()?;
    }
    // The last line is what CI shows (`.ci/run` tails it).
    outln!(
        "{exchanges} exchanges over {} providers; {}",
        ids.len(),
        if mismatches == 0 {
            "each matched its offline replay.".to_owned()
        } else {
            format!("{mismatches} did not match.")
        }
    )?;
    Ok(if mismatches == 0 {
        exit::OK
    } else {
        exit::REFUSED
    })
}

fn print_row(label: &str, exchanges: usize, mismatches: usize) -> Result<(), Error> {
    let result = if mismatches == 0 {
        "✓ each matched its offline replay".to_owned()
    } else {
        format!("✗ {mismatches} did not match (`specauth demo {label}` shows how)")
    };
    textln!("{label:<16} {exchanges:>9}  {result}")
}

/// One exchange of the transcript.
fn show(i: usize, live: &LiveExchange) -> Result<(), Error> {
    outln!()?;
    textln!("[{}] {} (grant {})", i + 1, live.name, live.kind.name())?;
    for line in live.request.lines() {
        textln!("    │ {line}")?;
    }
    match &live.outcome {
        Err(why) => textln!("    ✗ {why}")?,
        Ok(outcome) => {
            let shown = strip_nulls(outcome);
            let arrow = if shown.get("token").is_some() {
                "token"
            } else {
                "provider error"
            };
            textln!(
                "    → {arrow}: {}",
                shown.get("token").or(shown.get("error")).unwrap_or(&shown)
            )?;
            if let Some(at) = shown["token"]["expires_at"].as_u64() {
                textln!("      expires {}", date(at))?;
            }
        }
    }
    if live.matches() {
        return Ok(());
    }
    if !live.received_as_rendered && live.outcome.is_ok() {
        outln!("    ✗ the server did not receive the request as rendered")?;
    } else if live.outcome.is_ok() {
        textln!("    ✗ differs from the offline replay: {}", live.offline)?;
    }
    Ok(())
}

/// Epoch seconds as an RFC 3339 UTC time (`2013-10-28T12:26:14Z`).
fn date(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("at {epoch} (epoch seconds)"))
}

/// Absent and null are the same to a reader of the demo.
fn strip_nulls(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), strip_nulls(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}
