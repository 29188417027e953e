//! The floor for `cargo bench`'s cached `print-token` row: a minimal Rust program that reads a
//! token cache file, parses it, and prints the access token when it has not expired. No spec,
//! no argument parser, no locking.
//!
//! `floor_print_token CACHE_FILE`

use std::io::Write as _;

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: floor_print_token CACHE_FILE");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("floor_print_token: {e}");
            std::process::exit(2);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let entry: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let token = &entry["token"];
    let fresh = token["expires_at"].as_u64().is_none_or(|at| at > now);
    match token["access_token"].as_str() {
        Some(access) if fresh => {
            let _ = writeln!(std::io::stdout(), "{access}");
        }
        _ => {
            eprintln!("floor_print_token: no fresh token in the cache file");
            std::process::exit(4);
        }
    }
}
