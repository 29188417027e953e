//! The floor for `cargo bench`'s one-shot `token` row: a minimal Rust program doing the same
//! refresh-token exchange as `specauth token xee refresh_token` over the same HTTP client (ureq),
//! written by hand for one provider: HTTP Basic client authentication, a form body, the JSON reply
//! parsed and its access token printed. No spec, no argument parser, no cache.
//!
//! `floor_token URL CLIENT_ID CLIENT_SECRET REFRESH_TOKEN`

use base64::Engine as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, client_id, client_secret, refresh_token] = args.as_slice() else {
        eprintln!("usage: floor_token URL CLIENT_ID CLIENT_SECRET REFRESH_TOKEN");
        std::process::exit(2);
    };
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{client_secret}"));
    let reply = ureq::post(url.as_str())
        .header("Authorization", format!("Basic {basic}"))
        .header("Accept", "application/json")
        .send_form([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ]);
    let text = match reply.and_then(|mut r| r.body_mut().read_to_string()) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("floor_token: {e}");
            std::process::exit(3);
        }
    };
    match serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("access_token")?.as_str().map(str::to_owned))
    {
        Some(token) => println!("{token}"),
        None => {
            eprintln!("floor_token: no access_token in the reply");
            std::process::exit(3);
        }
    }
}
