//! Every ```toml block in README.md is a config `anemone validate` accepts.
//!
//! The convention (README.md says it too, under "Developing"): a ```toml block is an
//! Anemone config, complete or a part that stands alone (every section is optional). The
//! line before a block may carry a marker:
//!
//! * `<!-- readme-config: after FILE -->`: the block is appended to FILE (a path in the
//!   repository), for a part that needs the rest of a config (sensors it names);
//! * `<!-- readme-config: skip (why) -->`: not an Anemone config (another program's TOML).
//!
//! Files a block names (`password_file`, `ca_file`) live on the Pi, so blocks are checked
//! with `validate --skip-files`.

use std::path::Path;

use crate::cli::bin;

/// One ```toml block: the line it starts on, its text and the marker before it.
struct Block {
    line: usize,
    text: String,
    marker: Option<String>,
}

fn toml_blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() == "```toml" {
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- readme-config:"))
                .and_then(|l| l.strip_suffix("-->"))
                .map(|m| m.trim().to_string());
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            blocks.push(Block {
                line: i + 1,
                text: lines[start..end].join("\n") + "\n",
                marker,
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

#[test]
fn every_toml_snippet_in_the_readme_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let blocks = toml_blocks(&readme);
    let mut checked = 0;
    let mut failures = Vec::new();
    for b in &blocks {
        let text = match b.marker.as_deref() {
            Some(m) if m.starts_with("skip") => {
                assert!(
                    m.len() > "skip".len() + 3,
                    "README.md line {}: say why the block is skipped: `skip (why)`",
                    b.line
                );
                continue;
            }
            Some(m) => {
                let file = m
                    .strip_prefix("after ")
                    .unwrap_or_else(|| panic!("README.md line {}: unknown marker `{m}`", b.line));
                let base = std::fs::read_to_string(root.join(file.trim()))
                    .unwrap_or_else(|e| panic!("README.md line {}: {file}: {e}", b.line));
                format!("{base}\n{}", b.text)
            }
            None => b.text.clone(),
        };
        let path = dir.path().join(format!("readme-line-{}.toml", b.line));
        std::fs::write(&path, text).unwrap();
        let out = bin()
            .args(["validate", "--skip-files", "--config"])
            .arg(&path)
            .output()
            .expect("run anemone validate");
        checked += 1;
        if !out.status.success() {
            failures.push(format!(
                "README.md line {}: {}{}",
                b.line,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "```toml blocks that `anemone validate` refuses (another program's TOML: put \
         `<!-- readme-config: skip (why) -->` on the line before it):\n{}",
        failures.join("\n")
    );
    assert!(
        checked >= 4,
        "only {checked} toml blocks found in README.md"
    );
}

#[test]
fn the_marker_parser_sees_markers_and_blocks() {
    let md = "text\n<!-- readme-config: skip (Telegraf) -->\n```toml\n[a]\n```\n\n```toml\n[mqtt]\n```\n";
    let b = toml_blocks(md);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].marker.as_deref(), Some("skip (Telegraf)"));
    assert_eq!(b[0].text, "[a]\n");
    assert_eq!(b[1].marker, None);
    assert_eq!(b[1].line, 7);
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_link_within_the_readme_finds_its_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut in_code = false;
    let mut anchors = std::collections::BTreeSet::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
    }
    let mut broken = Vec::new();
    for (n, line) in readme.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("](#") {
            let tail = &rest[i + 3..];
            let end = tail.find(')').unwrap_or(tail.len());
            if !anchors.contains(&tail[..end]) {
                broken.push(format!("line {}: #{}", n + 1, &tail[..end]));
            }
            rest = &tail[end..];
        }
    }
    assert!(broken.is_empty(), "links to no heading: {broken:?}");
    assert_eq!(anchor("MQTT: dashboards"), "mqtt-dashboards");
    assert_eq!(
        anchor("Try it (no hardware, no setup)"),
        "try-it-no-hardware-no-setup"
    );
}
