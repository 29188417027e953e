//! The JSON Schema checked by a standard validator: Python's `jsonschema` (Draft 7), pinned in
//! `tests/schema/requirements.txt` and installed into a venv under `target/` on first run (it
//! costs the Rust build nothing). Every bundled spec must be valid; every malformed-spec
//! fixture that a schema can catch must be caught, with a message that names the mistake; the
//! others are listed with the reason a schema cannot see them.
//!
//! Needs `python3` with the `venv` module, and PyPI reachable on the first run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Malformed fixtures the schema catches, by number, with words its first message must hold.
const CAUGHT: &[(&str, &str)] = &[
    ("01", "'grant' was unexpected"),
    ("02", "'feilds' was unexpected"),
    ("03", "'requird' was unexpected"),
    ("04", "is not of type 'object'"),
    ("05", "'yes' is not of type 'boolean'"),
    ("06", "'ok' is not of type 'integer'"),
    ("07", "-5 is less than the minimum of 0"),
    ("18", "'$$' does not match"),
    ("54", "'integer' is not one of"),
    ("19", "does not match"),
    ("20", "does not match"),
    ("21", "'bearer' is not one of"),
    ("22", "'mtls_magic' is not one of"),
    ("23", "'utf8' is not one of"),
    ("24", "'multipart' is not one of"),
    ("27", "'trace' is not one of"),
    ("31", "is not valid under any of the given schemas"),
    ("32", "'MyProvider' does not match"),
    ("36", "'X Api Version' does not match"),
    ("37", "'minutes' is not one of"),
    ("38", "should be non-empty"),
    ("39", "should not be valid under"),
    ("40", "is not valid under any of the given schemas"),
    ("41", "'value' is a required property"),
    ("44", "is not of type 'object'"),
    ("45", "does not match"),
    ("47", "'data.token' does not match"),
    ("49", "is not of type 'array'"),
    ("51", "does not match"),
    ("52", "'banking' is not one of"),
];

/// Malformed fixtures no schema can catch, by number, and why.
const NOT_A_SCHEMA_MATTER: &[(&str, &str)] = &[
    (
        "08",
        "YAML syntax: the file does not parse, so there is no document to validate",
    ),
    ("09", "YAML syntax"),
    ("10", "YAML syntax"),
    ("34", "YAML syntax"),
    (
        "42",
        "a duplicate key: YAML parsers keep one value, the document never shows two",
    ),
    (
        "11",
        "whether a base spec exists is a fact of the file system / bundle",
    ),
    ("12", "an `extends:` cycle spans files"),
    ("13", "an `extends:` cycle spans files"),
    (
        "50",
        "where a relative `extends:` path leads is a fact of the file system",
    ),
    (
        "14",
        "template grammar (minijinja) is not a regular language",
    ),
    (
        "15",
        "a template's variables must be declared inputs: a cross-reference",
    ),
    (
        "16",
        "a template's variables must be declared inputs: a cross-reference",
    ),
    (
        "17",
        "JSONPath grammar past its first character is not checked by a pattern",
    ),
    (
        "53",
        "an input removed while the base still uses it: a cross-reference",
    ),
    ("46", "template grammar"),
    ("48", "template grammar"),
    (
        "25",
        "`xml_root` may come from `request:` or the base spec: known only after merging",
    ),
    (
        "26",
        "an endpoint name must be declared under `endpoints:`, possibly by the base",
    ),
    ("28", "an example's grant must exist in the merged spec"),
    (
        "29",
        "an example's inputs must be declared, possibly by the base",
    ),
    (
        "30",
        "a default must be one of the same input's enum values (data-dependent)",
    ),
    (
        "33",
        "the token path may come from the base spec: known only after merging",
    ),
    (
        "35",
        "client_id may be declared by the base spec: known only after merging",
    ),
    (
        "43",
        "the endpoint a grant uses may be declared by the base: known only after merging",
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One venv per target folder, set up once (tests in this file share it).
fn python() -> PathBuf {
    static SETUP: Mutex<()> = Mutex::new(());
    let _once = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let requirements = root().join("tests/schema/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schema-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the schema test needs Python's venv module: install python3-venv (Debian: \
             `apt-get install python3-venv`).\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "the schema test needs python3 with the venv module (Debian: `apt-get install \
             python3 python3-venv`): {e}"
        ),
    }
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip could not install tests/schema/requirements.txt (is PyPI reachable?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, &wanted).unwrap();
    python
}

/// Each document's errors, by name: `best` (what a validator shows first) and `all`.
fn validate(documents: &Map<String, Value>) -> Map<String, Value> {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, specauth::spec::schema().to_string()).unwrap();
    let docs = dir.path().join("documents.json");
    std::fs::write(&docs, Value::Object(documents.clone()).to_string()).unwrap();
    let out = Command::new(python)
        .arg(root().join("tests/schema/validate.py"))
        .arg(&schema)
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "validate.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Object(m) => m,
        other => panic!("validate.py printed {other}"),
    }
}

/// A YAML file as the JSON document an editor's validator sees, or the YAML error.
fn document(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).map_err(|e| e.to_string())
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_bundled_spec_is_valid_under_the_schema() {
    let mut documents = Map::new();
    for path in yaml_files(&root().join("specs")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc = document(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        documents.insert(name, doc);
    }
    assert!(documents.len() > 100, "the bundled specs were not found");
    let results = validate(&documents);
    let invalid: Vec<String> = results
        .iter()
        .filter(|(_, r)| r["best"] != Value::Null)
        .map(|(name, r)| format!("{name}: {}", r["all"]))
        .collect();
    assert!(invalid.is_empty(), "{}", invalid.join("\n"));
}

#[test]
fn the_schema_catches_the_malformed_specs_a_schema_can_see() {
    let dir = root().join("tests/malformed");
    let mut documents = Map::new();
    let mut unparsable = Vec::new();
    let mut numbers = Vec::new();
    for path in yaml_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let number = name[..2].to_owned();
        numbers.push(number.clone());
        match document(&path) {
            Ok(doc) => {
                documents.insert(number, doc);
            }
            Err(_) => unparsable.push(number),
        }
    }
    // Every fixture is in exactly one list: a new one needs a decision.
    for n in &numbers {
        let caught = CAUGHT.iter().any(|(c, _)| c == n);
        let not = NOT_A_SCHEMA_MATTER.iter().any(|(c, _)| c == n);
        assert!(
            caught ^ not,
            "fixture {n}: list it in CAUGHT or in NOT_A_SCHEMA_MATTER (exactly one)"
        );
    }
    let results = validate(&documents);
    let mut wrong = Vec::new();
    for (n, words) in CAUGHT {
        match results.get(*n).map(|r| &r["best"]) {
            None => wrong.push(format!("{n}: does not parse as YAML, so no schema sees it")),
            Some(Value::Null) => wrong.push(format!("{n}: valid under the schema")),
            Some(best) => {
                let message = best["message"].as_str().unwrap_or_default();
                if !message.contains(words) {
                    wrong.push(format!(
                        "{n}: the first message is `{message}` at `{}`; expected it to say `{words}`",
                        best["path"]
                    ));
                }
            }
        }
    }
    for (n, why) in NOT_A_SCHEMA_MATTER {
        if let Some(Value::Object(best)) = results.get(*n).map(|r| &r["best"]) {
            wrong.push(format!(
                "{n}: listed as beyond a schema ({why}) but the schema catches it: {best:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The YAML-level ones really are unparsable.
    for n in &unparsable {
        let why = NOT_A_SCHEMA_MATTER
            .iter()
            .find(|(c, _)| c == n)
            .map(|(_, w)| *w)
            .unwrap_or("");
        assert!(
            why.contains("YAML") || why.contains("duplicate"),
            "fixture {n} does not parse but is not listed as a YAML matter"
        );
    }
}

/// Every property the schema describes has a description (editors show it on hover).
#[test]
fn every_property_has_a_description() {
    fn walk(schema: &Value, at: &str, missing: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        let described = prop
                            .get("description")
                            .is_some_and(|d| d.as_str().is_some_and(|d| !d.trim().is_empty()));
                        if !described {
                            missing.push(format!("{at}/{name}"));
                        }
                    }
                }
                for (key, value) in map {
                    walk(value, &format!("{at}/{key}"), missing);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{at}/{i}"), missing);
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(&specauth::spec::schema(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "properties without a description:\n{}",
        missing.join("\n")
    );
}
