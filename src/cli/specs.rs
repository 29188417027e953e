//! `check`, `test` and `providers`: working with spec files.

use std::path::{Path, PathBuf};

use specauth::{Error, Loader, RequestKind, Spec};

use super::exit;

/// Files named by the arguments: files as given, folders expanded to their `*.yaml`/`*.yml`.
/// A folder without any is refused: checking nothing must not look like success.
fn spec_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd =
                std::fs::read_dir(p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            let mut here: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            if here.is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no spec files (*.yaml or *.yml) in this folder",
                    p.display()
                )));
            }
            here.sort();
            out.extend(here);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    Ok(out)
}

fn load(loader: &Loader, path: &Path) -> Result<Spec, Error> {
    loader.load_file(path)
}

/// One problem for `--json`: where it is and what it is (`line` and `column` 0 when the
/// problem is not at a place in the file, such as a file that cannot be read).
fn problem(file: &Path, e: &Error) -> serde_json::Value {
    match e {
        Error::Spec(se) => serde_json::json!({
            "file": se.pos.file.as_ref(),
            "line": se.pos.line,
            "column": se.pos.column,
            "message": se.message,
        }),
        other => serde_json::json!({
            "file": file.display().to_string(),
            "line": 0,
            "column": 0,
            "message": other.to_string(),
        }),
    }
}

pub(crate) fn check(loader: &Loader, paths: &[PathBuf], json: bool) -> Result<u8, Error> {
    let mut bad = 0;
    let (mut checked, mut problems) = (Vec::new(), Vec::new());
    for file in spec_files(paths)? {
        match load(loader, &file) {
            Ok(spec) if json => checked.push(serde_json::json!({
                "file": file.display().to_string(),
                "id": spec.id(),
                "grants": spec.grant_names().count(),
                "examples": spec.example_count(),
            })),
            Ok(spec) => textln!(
                "ok    {} ({}: {} grants, {} examples)",
                file.display(),
                spec.id(),
                spec.grant_names().count(),
                spec.example_count()
            )?,
            Err(e) => {
                bad += 1;
                if json {
                    problems.push(problem(&file, &e));
                } else {
                    textln!("error {e}")?;
                }
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::json!({ "ok": checked, "problems": problems })
        )?;
    }
    Ok(if bad == 0 { exit::OK } else { exit::USAGE })
}

pub(crate) fn test(
    loader: &Loader,
    paths: &[PathBuf],
    verbose: bool,
    json: bool,
) -> Result<u8, Error> {
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    let (mut examples, mut problems) = (Vec::new(), Vec::new());
    for file in spec_files(paths)? {
        let spec = match load(loader, &file) {
            Ok(s) => s,
            Err(e) => {
                broken += 1;
                if json {
                    problems.push(problem(&file, &e));
                } else {
                    textln!("error {e}")?;
                }
                continue;
            }
        };
        for report in spec.run_examples() {
            if report.passed() {
                passed += 1;
            } else {
                failed += 1;
            }
            if json {
                examples.push(serde_json::json!({
                    "spec": spec.id(),
                    "name": report.name,
                    "file": report.pos.file.as_ref(),
                    "line": report.pos.line,
                    "column": report.pos.column,
                    "passed": report.passed(),
                    "differences": report.failures,
                }));
                continue;
            }
            if report.passed() {
                textln!("PASS  {} › {}", spec.id(), report.name)?;
            } else {
                textln!("FAIL  {} › {} ({})", spec.id(), report.name, report.pos)?;
                for f in &report.failures {
                    textln!("        {f}")?;
                }
            }
            if verbose {
                for line in report.request.lines() {
                    textln!("        | {line}")?;
                }
                textln!("        → {}", report.outcome)?;
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "passed": passed,
                "failed": failed,
                "examples": examples,
                "problems": problems,
            })
        )?;
    } else {
        outln!("{passed} passed, {failed} failed")?;
    }
    Ok(if broken > 0 {
        exit::USAGE
    } else if failed > 0 {
        exit::REFUSED
    } else {
        exit::OK
    })
}

/// Client auth methods of a spec's grants, without repeats (`basic`, or `post/basic`).
fn auth_methods(spec: &Spec) -> String {
    let mut methods: Vec<String> = Vec::new();
    for g in spec.grant_names() {
        let Some(m) = spec.client_auth(g).map(|m| m.as_str()) else {
            continue;
        };
        // A method an input chooses is shown as its default, and the input that chooses.
        let m = match spec.client_auth_input(g) {
            Some(input) => format!("{m} (by `{input}`)"),
            None => m.to_owned(),
        };
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    methods.join("/")
}

/// The requests besides grants and the authorization URL that the spec can make.
fn other_requests(spec: &Spec) -> Vec<String> {
    spec.request_kinds()
        .filter(|k| !k.is_grant() && *k != RequestKind::Authorization)
        .map(|k| k.name().to_owned())
        .collect()
}

/// Which providers a listing shows.
pub(crate) struct Filter {
    /// Only this category.
    pub(crate) category: Option<String>,
    /// Only providers whose id, name, website or endpoints contain this (any case).
    pub(crate) search: Option<String>,
}

impl Filter {
    fn keeps(&self, spec: &Spec) -> bool {
        let category = self
            .category
            .as_ref()
            .is_none_or(|c| spec.categories().iter().any(|x| x == c));
        let search = self.search.as_ref().is_none_or(|q| {
            let q = q.to_lowercase();
            let hay = [
                spec.id(),
                spec.name(),
                spec.website().unwrap_or(""),
                spec.docs().unwrap_or(""),
            ];
            hay.iter().any(|h| h.to_lowercase().contains(&q))
                || spec.endpoint_urls().any(|u| u.to_lowercase().contains(&q))
        });
        category && search
    }
}

/// The bases among `specs` (`base: true`), as `` `id` (name) `` items.
fn bases(specs: &[Spec]) -> String {
    specs
        .iter()
        .filter(|s| s.is_base())
        .map(|s| format!("`{}`: {}", s.id(), s.name()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// docs/providers.md: every provider, generated from the specs.
pub(crate) fn markdown_page(loader: &Loader) -> Result<String, Error> {
    let specs = bundled_specs(loader)?;
    let mut out = format!(
        "# Bundled providers\n\nGenerated by `specauth providers --markdown` from the specs themselves; a test fails\nwhen it is out of date. {} providers besides the generic bases ({}). \"login\" means the spec\nhas an authorization endpoint for `specauth login`; `revoke`, `introspect` and\n`device_authorization` appear where the spec declares those endpoints.\n\n",
        specs.iter().filter(|s| !s.is_base()).count(),
        bases(&specs)
    );
    out.push_str(&markdown_table(&specs));
    Ok(out)
}

/// The README's catalogue block: the count, the categories, and the link to the page.
pub(crate) fn readme_summary(loader: &Loader) -> Result<String, Error> {
    let specs = bundled_specs(loader)?;
    let providers: Vec<&Spec> = specs.iter().filter(|s| !s.is_base()).collect();
    let mut out = format!(
        "{} providers are bundled besides the generic bases ({}). By category (a provider may\nhave several):\n\n| category | providers |\n|---|---|\n",
        providers.len(),
        bases(&specs)
    );
    for category in specauth::spec::CATEGORIES {
        let n = providers
            .iter()
            .filter(|s| s.categories().iter().any(|c| c == category))
            .count();
        if n > 0 {
            out.push_str(&format!("| {category} | {n} |\n"));
        }
    }
    out.push_str(
        "\nThe full table, with each provider's grants, client authentication and quirks, is\n[docs/providers.md](docs/providers.md) (`specauth providers --markdown`); list and filter\nwith `specauth providers --category crm` or `--search bank`.\n",
    );
    Ok(out)
}

fn bundled_specs(loader: &Loader) -> Result<Vec<Spec>, Error> {
    loader.ids().iter().map(|id| loader.load(id)).collect()
}

/// The providers table, generated from the specs.
fn markdown_table(specs: &[Spec]) -> String {
    let mut out = String::from(
        "| id | provider | categories | grants | client auth | notable (derived from the spec) |\n|---|---|---|---|---|---|\n",
    );
    for spec in specs {
        let mut grants: Vec<&str> = spec.grant_names().collect();
        if spec.supports(&RequestKind::Authorization) {
            grants.push("login");
        }
        let requests = other_requests(spec);
        grants.extend(requests.iter().map(String::as_str));
        let name = match spec.website() {
            Some(w) => format!("[{}]({w})", spec.name().replace('|', "\\|")),
            None => spec.name().replace('|', "\\|"),
        };
        out.push_str(&super::printable(&format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            spec.id(),
            name,
            spec.categories().join(", "),
            grants.join(", "),
            auth_methods(spec),
            spec.quirks().join("; ").replace('|', "\\|"),
        )));
        out.push('\n');
    }
    out
}

pub(crate) fn providers(
    loader: &Loader,
    json: bool,
    markdown: bool,
    readme: bool,
    filter: &Filter,
) -> Result<u8, Error> {
    if markdown {
        out!("{}", markdown_page(loader)?)?;
        return Ok(exit::OK);
    }
    if readme {
        out!("{}", readme_summary(loader)?)?;
        return Ok(exit::OK);
    }
    if let Some(c) = &filter.category
        && !specauth::spec::CATEGORIES.contains(&c.as_str())
    {
        return Err(Error::Usage(format!(
            "unknown category `{c}`; expected one of {}",
            specauth::spec::CATEGORIES.join(", ")
        )));
    }
    let mut rows = Vec::new();
    for id in loader.ids() {
        match loader.load(&id) {
            Ok(spec) if !filter.keeps(&spec) => {}
            Ok(spec) => rows.push(serde_json::json!({
                "id": spec.id(),
                "name": spec.name(),
                "categories": spec.categories(),
                "website": spec.website(),
                "grants": spec.grant_names().collect::<Vec<_>>(),
                "requests": other_requests(&spec),
                "login": spec.supports(&RequestKind::Authorization),
                "client_auth": auth_methods(&spec),
                "quirks": spec.quirks(),
                "docs": spec.docs(),
                "source": spec.source(),
            })),
            Err(e) => rows.push(serde_json::json!({ "id": id, "error": e.to_string() })),
        }
    }
    if json {
        outln!("{}", serde_json::Value::Array(rows))?;
    } else {
        for r in &rows {
            match r.get("error") {
                Some(e) => textln!(
                    "{:<12} error: {}",
                    r["id"].as_str().unwrap_or(""),
                    e.as_str().unwrap_or("")
                )?,
                None => textln!(
                    "{:<12} {:<36} {}",
                    r["id"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    r["grants"]
                        .as_array()
                        .map(|g| g
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                )?,
            }
        }
    }
    Ok(exit::OK)
}

/// The spec `specauth new ID` writes: everything a first spec needs, each line saying what
/// to change. It passes `specauth check` and `specauth test` as written.
const NEW_SPEC: &str = r#"# yaml-language-server: $schema=spec.schema.json
# {{ID}}: written from <the provider's token endpoint docs>. The modeline above lets an editor
# (VS Code with the YAML extension, Neovim with yaml-language-server…) complete and check this
# file against spec.schema.json (`specauth schema > spec.schema.json`).
# Check it with `specauth check {{ID}}.yaml`, replay its examples with `specauth test {{ID}}.yaml`.
id: {{ID}}
name: {{ID}}                     # the provider's name, as people know it
extends: oauth2                  # the RFC 6749 defaults (grants, inputs, reply paths); say only what differs
docs: https://example.com/docs/oauth   # where the provider documents its token endpoint

endpoints:
  token: https://example.com/oauth/token
  authorize: https://example.com/oauth/authorize

# How the client authenticates: basic | post | both | none | auto | private_key_jwt |
# client_secret_jwt | tls_client_auth | self_signed_tls_client_auth (the last two: mutual TLS)
client_auth: basic

examples:
  # One documented exchange: replace the inputs, the reply and what is expected with the
  # provider's own example (its docs' request and response).
  - name: code exchange (200)
    grant: authorization_code
    inputs:
      client_id: app
      client_secret: s3cret
      code: abc
      redirect_uri: https://app.example/callback
    reply:
      status: 200
      json: { access_token: at-123, token_type: bearer, expires_in: 3600, refresh_token: rt-456 }
    expect:
      request:
        method: POST
        url: https://example.com/oauth/token
        headers: { Authorization: "Basic YXBwOnMzY3JldA==" }
        form: { grant_type: authorization_code, code: abc, redirect_uri: "https://app.example/callback" }
      token:
        access_token: at-123
        token_type: Bearer
        expires_in: 3600
        refresh_token: rt-456
"#;

/// Whether `id` is a spec id: lower case letters, digits and `-`, starting with a letter.
fn is_spec_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `specauth new ID`: a spec to fill in, on stdout or in a new file (with the JSON Schema
/// beside it when the folder has none, so the modeline works at once).
pub(crate) fn new_spec(loader: &Loader, id: &str, output: Option<&Path>) -> Result<u8, Error> {
    if !is_spec_id(id) {
        return Err(Error::Usage(format!(
            "`{id}` is not a spec id: use lower case letters, digits and `-`, starting with a letter"
        )));
    }
    let yaml = NEW_SPEC.replace("{{ID}}", id);
    // What is written must load, examples included.
    let spec = Spec::from_yaml(&format!("{id}.yaml"), &yaml)?;
    debug_assert!(spec.run_examples().iter().all(|r| r.passed()));
    if loader.ids().iter().any(|known| known == id) {
        errln!("Note: `{id}` is also a bundled provider; a spec in a --specs folder shadows it.");
    }
    let Some(path) = output else {
        out!("{yaml}")?;
        return Ok(exit::OK);
    };
    let write_new = |path: &Path, text: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|source| Error::Io {
                action: "create",
                path: path.to_path_buf(),
                source,
            })
    };
    write_new(path, &yaml)?;
    errln!("Wrote {}.", path.display());
    let schema_path = path
        .parent()
        .unwrap_or(Path::new("."))
        .join("spec.schema.json");
    if !schema_path.exists() {
        let schema = serde_json::to_string_pretty(&specauth::spec::schema()).unwrap_or_default();
        write_new(&schema_path, &format!("{schema}\n"))?;
        errln!("Wrote {} for the modeline.", schema_path.display());
    }
    Ok(exit::OK)
}
