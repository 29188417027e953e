//! How a cached token is printed for the tool that reads it: `print-token --format`, and the
//! `Authorization` header every adapter sends.

use specauth::Token;

/// `print-token --format`: what the tool reading stdout expects.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TokenFormat {
    /// The access token alone, one line (for `$(specauth print-token …)`).
    #[default]
    Bare,
    /// An `Authorization: <type> <token>` line (for `curl -H @-`, `wget --header`).
    Header,
    /// `{"access_token", "token_type", "expires_at"}`, expiry in epoch seconds or null.
    Json,
    /// Shell `export` lines: SPECAUTH_TOKEN and SPECAUTH_TOKEN_EXPIRES_AT (for `eval`).
    Env,
}

/// The scheme of the `Authorization` header: the token's type (`Bearer`, normalised by the
/// interpreter, or the provider's own word), `Bearer` when the reply named none.
pub(crate) fn scheme(token: &Token) -> &str {
    if token.token_type.trim().is_empty() {
        "Bearer"
    } else {
        token.token_type.trim()
    }
}

/// `<type> <token>`: the value of an `Authorization` header.
pub(crate) fn authorization(token: &Token) -> String {
    format!("{} {}", scheme(token), token.access_token.secret())
}

/// `text` quoted for a POSIX shell: single quotes, each `'` written as `'\''`.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The token as `format` prints it, ending with a line break. Text from the cache passes
/// through [`super::printable`] (a token never holds control characters; a planted one must
/// not drive the terminal); JSON escapes them itself.
pub(crate) fn render(token: &Token, format: TokenFormat) -> String {
    match format {
        TokenFormat::Bare => format!("{}\n", super::printable(token.access_token.secret())),
        TokenFormat::Header => {
            format!(
                "Authorization: {}\n",
                super::printable(&authorization(token))
            )
        }
        TokenFormat::Json => format!(
            "{}\n",
            serde_json::json!({
                "access_token": token.access_token.secret(),
                "token_type": scheme(token),
                "expires_at": token.expires_at,
            })
        ),
        TokenFormat::Env => {
            let expiry = match token.expires_at {
                Some(at) => format!("export SPECAUTH_TOKEN_EXPIRES_AT={at}"),
                // Unknown expiry: a value left from an earlier token must not linger.
                None => "unset SPECAUTH_TOKEN_EXPIRES_AT".to_owned(),
            };
            format!(
                "export SPECAUTH_TOKEN={}\n{expiry}\n",
                shell_quote(&super::printable(token.access_token.secret()))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specauth::Secret;

    fn token(value: &str, expires_at: Option<u64>) -> Token {
        Token {
            expires_at,
            ..Token::bearer(Secret::new(value))
        }
    }

    #[test]
    fn each_format_prints_what_its_reader_parses() {
        let t = token("tok'en", Some(1_900_000_000));
        assert_eq!(render(&t, TokenFormat::Bare), "tok'en\n");
        assert_eq!(
            render(&t, TokenFormat::Header),
            "Authorization: Bearer tok'en\n"
        );
        assert_eq!(
            render(&t, TokenFormat::Json),
            "{\"access_token\":\"tok'en\",\"token_type\":\"Bearer\",\"expires_at\":1900000000}\n"
        );
        assert_eq!(
            render(&t, TokenFormat::Env),
            "export SPECAUTH_TOKEN='tok'\\''en'\nexport SPECAUTH_TOKEN_EXPIRES_AT=1900000000\n"
        );
        let t = Token {
            token_type: "MAC".into(),
            ..token("x", None)
        };
        assert_eq!(render(&t, TokenFormat::Header), "Authorization: MAC x\n");
        assert!(render(&t, TokenFormat::Json).contains("\"expires_at\":null"));
        assert!(render(&t, TokenFormat::Env).ends_with("unset SPECAUTH_TOKEN_EXPIRES_AT\n"));
    }
}
