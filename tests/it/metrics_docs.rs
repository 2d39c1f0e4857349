//! `docs/metrics.md` and the metric families credwatch can export stay in
//! step: every family is documented, and every documented family exists.
//!
//! What credwatch can export is `metrics::FAMILIES` (per credential),
//! `metrics::SELF_FAMILIES` (its own) and the `process_*` families of the
//! process collector, read from a live scrape. The live scrape also proves
//! those lists complete: every `# TYPE` it carries must be in them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use credwatch_sim::{Simulator, World};

use crate::harness::Daemon;

/// Metric names in the first column of the tables of `docs/metrics.md`.
fn documented(markdown: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in markdown.lines() {
        let Some(rest) = line.strip_prefix('|') else {
            continue;
        };
        let first = rest.split('|').next().unwrap_or("");
        for (i, part) in first.split('`').enumerate() {
            let looks_like_metric = (part.starts_with("credwatch_")
                || part.starts_with("process_"))
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if i % 2 == 1 && looks_like_metric {
                names.insert(part.to_string());
            }
        }
    }
    names
}

/// The `# TYPE` names of a scrape.
fn scraped(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_metrics_md_documents_exactly_the_families_credwatch_exports() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let d = Daemon::start(&yaml).await;
    d.wait_ready(Duration::from_secs(15)).await;
    let live = scraped(&d.metrics().await);
    d.stop().await;

    let mut exportable: BTreeSet<String> = credwatch::metrics::FAMILIES
        .iter()
        .map(|f| f.name.to_string())
        .chain(
            credwatch::metrics::SELF_FAMILIES
                .iter()
                .map(|n| n.to_string()),
        )
        .chain(
            credwatch::call_paths::exposition::FAMILIES
                .iter()
                .map(|f| f.name.to_string()),
        )
        .collect();
    let unlisted: Vec<&String> = live
        .iter()
        .filter(|n| !n.starts_with("process_") && !exportable.contains(*n))
        .collect();
    assert!(
        unlisted.is_empty(),
        "/metrics carries families that are in neither metrics::FAMILIES nor \
         metrics::SELF_FAMILIES: {unlisted:?}"
    );
    let process: BTreeSet<String> = live
        .iter()
        .filter(|n| n.starts_with("process_"))
        .cloned()
        .collect();
    if cfg!(target_os = "linux") {
        assert!(
            process.contains("process_resident_memory_bytes"),
            "no process metrics in a live scrape: {live:?}"
        );
    }
    exportable.extend(process);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = documented(
        &std::fs::read_to_string(root.join("docs/metrics.md")).expect("read docs/metrics.md"),
    );
    let undocumented: Vec<&String> = exportable.difference(&docs).collect();
    let unknown: Vec<&String> = docs.difference(&exportable).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/metrics.md is out of step with the exported families.\n  \
         exported but not documented: {undocumented:?}\n  \
         documented but never exported: {unknown:?}"
    );
}

#[test]
fn the_docs_parser_reads_table_names_only() {
    let md = "| name | type |\n|---|---|\n| `credwatch_a` | gauge |\n\
              | `process_b`, `process_c` | | `credwatch_not_first_column` |\n\
              text `credwatch_in_prose` \n| `reason` | x |\n";
    let got: Vec<String> = documented(md).into_iter().collect();
    assert_eq!(got, ["credwatch_a", "process_b", "process_c"]);
}

#[test]
fn every_call_path_problem_is_documented() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .expect("docs/metrics.md");
    let section = doc
        .split("### `problem` label values (call paths)")
        .nth(1)
        .expect("docs/metrics.md has the call-path problem table");
    for p in credwatch::call_paths::LinkProblem::ALL {
        assert!(
            section.contains(&format!("| `{}` |", p.as_str())),
            "docs/metrics.md does not document call-path problem `{}`",
            p.as_str()
        );
    }
}
