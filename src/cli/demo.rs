//! `specauth demo`: each provider's documented exchanges, live over loopback, no credentials.

use specauth::testing::{ReplayServer, replay_live};
use specauth::{Error, Loader, UreqTransport};

use super::exit;

pub(crate) fn run(loader: &Loader, providers: &[String]) -> Result<u8, Error> {
    let server = ReplayServer::start()
        .map_err(|e| Error::Usage(format!("cannot start the local server: {e}")))?;
    let transport = UreqTransport::new();
    let ids: Vec<String> = if providers.is_empty() {
        loader.ids()
    } else {
        providers.to_vec()
    };
    outln!(
        "specauth demo: a server on {} answers as each provider's docs show; every request below\n\
         went through the real HTTP transport. Secrets are redacted.\n",
        server.origin()
    )?;
    let (mut exchanges, mut mismatches) = (0usize, 0usize);
    for id in &ids {
        let spec = loader.load(id)?.with_origin(&server.origin())?;
        if spec.example_count() == 0 {
            continue;
        }
        textln!("━━ {} · {} ━━", spec.id(), spec.name())?;
        for (i, live) in replay_live(&spec, &server, &transport).iter().enumerate() {
            exchanges += 1;
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
                }
            }
            if live.matches() {
                continue;
            }
            mismatches += 1;
            if !live.received_as_rendered && live.outcome.is_ok() {
                outln!("    ✗ the server did not receive the request as rendered")?;
            } else if live.outcome.is_ok() {
                textln!("    ✗ differs from the offline replay: {}", live.offline)?;
            }
        }
        outln!()?;
    }
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
