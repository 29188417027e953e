//! `specauth demo`: each provider's documented exchanges, live over loopback, no credentials.

use specauth::testing::ReplayServer;
use specauth::{Error, Loader, Transport as _, UreqTransport};

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
        let offline = spec.run_examples();
        for (i, expected) in offline.iter().enumerate() {
            let Some((grant, inputs, reply, now)) = spec.example_exchange(i) else {
                continue;
            };
            outln!()?;
            textln!("[{}] {} (grant {})", i + 1, expected.name, grant.name())?;
            let request = match spec.render(&grant, &inputs) {
                Ok(r) => r,
                Err(e) => {
                    mismatches += 1;
                    textln!("    ✗ cannot render: {e}")?;
                    continue;
                }
            };
            for line in request.redacted().lines() {
                textln!("    │ {line}")?;
            }
            let before = server.received().len();
            let sent_body = request.http().body().clone();
            server.push(reply);
            let outcome = transport
                .send(request.into_http())
                .map_err(Error::from)
                .and_then(|r| spec.normalise(&grant, &inputs, &r, now));
            exchanges += 1;
            let shown = specauth::examples::outcome_json(&outcome);
            let arrow = if outcome.is_ok() {
                "token"
            } else {
                "provider error"
            };
            // The same function built the offline outcome, so the two compare exactly.
            let same = shown == expected.outcome;
            let shown = strip_nulls(&shown);
            textln!(
                "    → {arrow}: {}",
                shown.get("token").or(shown.get("error")).unwrap_or(&shown)
            )?;
            let received = server.received();
            if received.len() != before + 1 || received[before].body != sent_body {
                mismatches += 1;
                outln!("    ✗ the server did not receive the request as rendered")?;
            } else if !same {
                mismatches += 1;
                textln!(
                    "    ✗ differs from the offline replay: {}",
                    expected.outcome
                )?;
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
