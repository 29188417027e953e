//! Malformed specs: every file in `tests/malformed/*.yaml` must fail to load, with the message and
//! the `line:col` its first line states:
//!
//! ```yaml
//! # expect: 12:5: unknown field `bogus`
//! ```
//!
//! `0:0` means "no position is possible" (a file-level error). The error must be in the case's
//! own file, unless a second line `# in: cycle/b.yaml` names another one (relative to
//! `tests/malformed`). Helper files that cases `extends:` live in subfolders and are not cases
//! themselves.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The suite must not shrink without someone noticing.
const MIN_CASES: usize = 24;

struct Expect {
    /// The file the error must be in, relative to `tests/malformed`.
    file: Option<String>,
    line: u64,
    column: u64,
    message: String,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed")
}

fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/malformed exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

/// Parses `# expect: LINE:COL: message` from the first line, and `# in: FILE` from the second.
fn expectation(text: &str) -> Result<Expect, String> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let file = lines
        .next()
        .and_then(|l| l.strip_prefix("# in:"))
        .map(|f| f.trim().to_owned());
    let rest = first
        .strip_prefix("# expect:")
        .ok_or_else(|| format!("first line must be `# expect: LINE:COL: message`, not `{first}`"))?
        .trim_start();
    let mut parts = rest.splitn(3, ':');
    let mut number = |what: &str| -> Result<u64, String> {
        let s = parts.next().unwrap_or("").trim();
        s.parse()
            .map_err(|_| format!("bad {what} `{s}` in the `# expect:` line"))
    };
    let line = number("line")?;
    let column = number("column")?;
    let message = parts.next().unwrap_or("").trim().to_owned();
    if message.is_empty() {
        return Err("the `# expect:` line has no message".to_owned());
    }
    Ok(Expect {
        file,
        line,
        column,
        message,
    })
}

/// Checks one case; `Err` lists what is wrong with it.
fn check(path: &Path) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let want = expectation(&text)?;

    let loaded = catch_unwind(AssertUnwindSafe(|| specauth::Spec::from_file(path)));
    let err = match loaded {
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "(non-string payload)".to_owned());
            return Err(format!("the loader panicked: {what}"));
        }
        Ok(Ok(_)) => return Err("loaded without error".to_owned()),
        Ok(Err(specauth::Error::Spec(e))) => e,
        Ok(Err(other)) => {
            return Err(format!(
                "failed with a {} error, not a spec error: {other}",
                other.kind()
            ));
        }
    };

    let mut problems = Vec::new();
    let want_file = want.file.as_deref().unwrap_or(&name);
    let got = format!("{}:{}: {}", err.pos.line, err.pos.column, err.message);
    if (err.pos.line, err.pos.column) != (want.line, want.column) {
        problems.push(format!(
            "position is {}:{}, expected {}:{}",
            err.pos.line, err.pos.column, want.line, want.column
        ));
    }
    if !err.pos.file.ends_with(want_file) {
        problems.push(format!(
            "file is `{}`, expected it to end with `{want_file}`",
            err.pos.file
        ));
    }
    if !err.message.contains(&want.message) {
        problems.push(format!("message does not contain `{}`", want.message));
    }
    let prefix = if want.line == 0 {
        format!("{}: ", err.pos.file)
    } else {
        format!("{}:{}:{}: ", err.pos.file, want.line, want.column)
    };
    let shown = err.to_string();
    if !shown.starts_with(&prefix) {
        problems.push(format!("Display `{shown}` does not start with `{prefix}`"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n      got: {got}", problems.join("; ")))
    }
}

#[test]
fn malformed_specs_fail_with_their_position_and_message() {
    let cases = cases();
    let mut failures = Vec::new();
    for path in &cases {
        if let Err(why) = check(path) {
            let name = path.file_name().unwrap().to_string_lossy();
            failures.push(format!("  {name}: {why}"));
        }
    }
    assert!(
        cases.len() >= MIN_CASES,
        "only {} malformed-spec cases in {}; at least {MIN_CASES} are required",
        cases.len(),
        cases_dir().display()
    );
    assert!(
        failures.is_empty(),
        "{} of {} malformed-spec cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Loading for use skips `examples:`, and reads them on first use: every case fails the same
/// way there, at the same place with the same message, either at load or when its examples are
/// first read ([`specauth::Spec::check_examples`]).
#[test]
fn loading_for_use_finds_the_same_errors_later_or_at_once() {
    let mut later = 0;
    for path in cases() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Err(specauth::Error::Spec(eager)) = specauth::Spec::from_file(&path) else {
            panic!("{name}: loads with its examples");
        };
        let loader = specauth::Loader::new().with_dir(path.parent().unwrap());
        let lazy = match loader.load_file(&path) {
            Err(specauth::Error::Spec(e)) => e,
            Err(other) => panic!("{name}: not a spec error: {other}"),
            Ok(spec) => {
                later += 1;
                assert_eq!(spec.example_count(), 0, "{name}");
                let reports = spec.run_examples();
                assert!(
                    reports.len() == 1 && !reports[0].passed(),
                    "{name}: replaying broken examples must fail: {reports:?}"
                );
                match spec.check_examples() {
                    Err(specauth::Error::Spec(e)) => e,
                    other => panic!("{name}: examples read later gave {other:?}"),
                }
            }
        };
        assert_eq!(lazy.to_string(), eager.to_string(), "{name}");
    }
    // The cases about examples (unknown grant, undeclared input, reply shapes…) are found later.
    assert!(
        later >= 5,
        "only {later} cases were found when the examples were read"
    );
}

/// The counterpart of the plain-http cases: `http://` to a loopback host is allowed.
#[test]
fn http_to_loopback_is_accepted() {
    for url in [
        "http://127.0.0.1:8080/token",
        "http://localhost/token",
        "http://[::1]:9000/token",
    ] {
        let yaml = format!("id: local\nextends: oauth2\nendpoints:\n  token: \"{url}\"\n");
        let spec = specauth::Spec::from_yaml("local.yaml", &yaml);
        assert!(spec.is_ok(), "{url} was refused: {:?}", spec.err());
    }
    // A templated URL with a literal loopback host is fine too.
    let yaml = "id: local\nextends: oauth2\ninputs:\n  port: {}\nendpoints:\n  token: \"http://127.0.0.1:{{ port }}/token\"\n";
    let spec = specauth::Spec::from_yaml("local.yaml", yaml);
    assert!(
        spec.is_ok(),
        "templated loopback URL was refused: {:?}",
        spec.err()
    );
}

/// The harness itself: the `# expect:` line is parsed as documented.
#[test]
fn expect_line_parses() {
    let e = expectation("# expect: 12:5: unknown field `x`: here\nid: a\n").unwrap();
    assert_eq!((e.line, e.column), (12, 5));
    assert_eq!(e.message, "unknown field `x`: here");
    assert_eq!(e.file, None);
    let e = expectation("# expect: 3:10: cycle\n# in: cycle/b.yaml\n").unwrap();
    assert_eq!(e.file.as_deref(), Some("cycle/b.yaml"));
    assert!(expectation("id: a\n").is_err());
    assert!(expectation("# expect: 1:x: y\n").is_err());
}
