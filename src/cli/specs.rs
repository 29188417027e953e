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

pub(crate) fn check(loader: &Loader, paths: &[PathBuf]) -> Result<u8, Error> {
    let mut bad = 0;
    for file in spec_files(paths)? {
        match load(loader, &file) {
            Ok(spec) => textln!(
                "ok    {} ({}: {} grants, {} examples)",
                file.display(),
                spec.id(),
                spec.grant_names().count(),
                spec.example_count()
            )?,
            Err(e) => {
                bad += 1;
                textln!("error {e}")?;
            }
        }
    }
    Ok(if bad == 0 { exit::OK } else { exit::USAGE })
}

pub(crate) fn test(loader: &Loader, paths: &[PathBuf], verbose: bool) -> Result<u8, Error> {
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for file in spec_files(paths)? {
        let spec = match load(loader, &file) {
            Ok(s) => s,
            Err(e) => {
                broken += 1;
                textln!("error {e}")?;
                continue;
            }
        };
        for report in spec.run_examples() {
            if report.passed() {
                passed += 1;
                textln!("PASS  {} › {}", spec.id(), report.name)?;
            } else {
                failed += 1;
                textln!("FAIL  {} › {}", spec.id(), report.name)?;
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
    outln!("{passed} passed, {failed} failed")?;
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
    let mut methods: Vec<&str> = Vec::new();
    for g in spec.grant_names() {
        if let Some(m) = spec.client_auth(g).map(|m| m.as_str())
            && !methods.contains(&m)
        {
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

/// docs/providers.md: every provider, generated from the specs.
pub(crate) fn markdown_page(loader: &Loader) -> Result<String, Error> {
    let specs = bundled_specs(loader)?;
    let mut out = format!(
        "# Bundled providers\n\nGenerated by `specauth providers --markdown` from the specs themselves; a test fails\nwhen it is out of date. {} providers besides the generic `oauth2` base. \"login\" means the\nspec has an authorization endpoint for `specauth login`; `revoke`, `introspect` and\n`device_authorization` appear where the spec declares those endpoints.\n\n",
        specs.iter().filter(|s| s.id() != "oauth2").count()
    );
    out.push_str(&markdown_table(&specs));
    Ok(out)
}

/// The README's catalogue block: the count, the categories, and the link to the page.
pub(crate) fn readme_summary(loader: &Loader) -> Result<String, Error> {
    let specs = bundled_specs(loader)?;
    let providers: Vec<&Spec> = specs.iter().filter(|s| s.id() != "oauth2").collect();
    let mut out = format!(
        "{} providers are bundled besides the generic `oauth2` base. By category (a provider\nmay have several):\n\n| category | providers |\n|---|---|\n",
        providers.len()
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
