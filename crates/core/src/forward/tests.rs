//! The canonical path: its rules case by case, then a generated sweep of spellings, each read
//! the ways an origin might read it.

use super::*;
use crate::record::{Grant, KeyStatus};
use crate::verify::check_project;

const OWN: &str = "ours";
const OTHER: &str = "evil";

fn grant() -> Grant {
    Grant {
        project_id: OWN.into(),
        key_id: "key_1".into(),
        key_name: "ci".into(),
        status: KeyStatus::Active,
        grace_expires_at: None,
    }
}

/// `target` split into path and query the way the shell splits the request URL: the path up to
/// the first `?`, the query after it (a URL's path never holds a `?`).
fn parse(target: &str) -> Result<CanonicalPath, ApiError> {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    CanonicalPath::parse(path, query)
}

#[test]
fn canonical_paths_pass_unchanged() {
    for target in [
        "/v1/ingest",
        "/v1/ingest?batch=7",
        "/v1/projects/ours/ingest",
        "/v1/projects/ours/traces/v2.1_a~b-c?service=my-project&x=%2F",
        "/v1/ingest?",
    ] {
        let canonical = parse(target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(canonical.target(), target);
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        assert_eq!((canonical.path(), canonical.query()), (path, query));
    }
}

#[test]
fn anything_else_is_400_non_canonical_path() {
    for target in [
        // The four, and its query.
        "/v1//projects/evil/ingest",
        "/v1/Projects/evil/ingest",
        "/v1/projects%2Fevil/ingest",
        "/v1/projects/ours/..%2Fevil/ingest",
        "/v1/projects/ours/ingest?project_id=evil",
        // Escapes, backslashes, parameters, dot and empty segments.
        "/v1/projects/ours/%2e%2e/evil/ingest",
        "/v1/projects/ours/%2E./evil",
        "/v1/proj%65cts/evil/ingest",
        "/v1/projects/ours/..\\evil/ingest",
        "/v1/projects/ours/..;/evil/ingest",
        "/v1/projects/ours;x=1/ingest",
        "/v1/projects/ours/../evil/ingest",
        "/v1/projects/ours/./ingest",
        "/v1/ingest/",
        "/v1/",
        "/v1/a b",
        // Other spellings of `projects`, or no id after it.
        "/v1/PROJECTS/evil/ingest",
        "/v1/project/evil/ingest",
        "/v1/projects./evil/ingest",
        "/v1/x/Pro-jects/evil",
        "/v1/projects",
        "/v1/projects/ours/projects",
        // Query names that mention a project, however spelled.
        "/v1/ingest?projectId=evil",
        "/v1/ingest?PROJECT=evil",
        "/v1/ingest?a=1&project-id=evil",
        "/v1/ingest?a=1;project_id=evil",
        "/v1/ingest?p%72oject_id=evil",
        "/v1/ingest?a=1%26project_id%3Devil",
        "/v1/ingest?a=1%2526project_id%253Devil",
        "/v1/ingest?projects[]=evil",
    ] {
        let err = parse(target).expect_err(target);
        assert_eq!(
            (err.status(), err.code()),
            (400, "non_canonical_path"),
            "{target}"
        );
    }
}

#[test]
fn the_projects_a_path_names_are_the_segments_after_projects() {
    let named = |target| {
        let path = parse(target).unwrap();
        path.named_projects().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(named("/v1/ingest").is_empty());
    assert_eq!(named("/v1/projects/a/ingest"), ["a"]);
    assert_eq!(named("/v1/projects/a/projects/b"), ["a", "b"]);
    assert_eq!(named("/v1/projects/projects/b/x"), ["projects", "b"]);
    assert_eq!(named("/v1/x/projects/project-x"), ["project-x"]);
}

/// How one character of a template is written in a spelling.
#[derive(Clone, Copy)]
enum Spelling {
    Raw,
    Upper,
    Lower,
    /// `%25` then the upper-case escape: `%252F` for `/`.
    Double,
}

fn write(out: &mut String, byte: u8, spelling: Spelling) {
    match spelling {
        Spelling::Raw => out.push(byte as char),
        Spelling::Upper => out.push_str(&format!("%{byte:02X}")),
        Spelling::Lower => out.push_str(&format!("%{byte:02x}")),
        Spelling::Double => out.push_str(&format!("%25{byte:02X}")),
    }
}

/// Every spelling of `template` the sweep tries. The characters involved in the attacks are
/// the separators (`/ . \ ? & = ;`) and the letters of `project` and of the other project's
/// id. Separators: every combination of raw, `%XX` and `%xx` (raw and `%XX` only past 7 of
/// them), and each alone double-encoded; each with the letters all raw or all `%XX`. Letters:
/// all `%xx`, and each alone as `%XX`, `%xx` or double-encoded; each with the separators all
/// raw, all `%XX` or all `%xx`.
fn spellings(template: &str) -> Vec<String> {
    let bytes = template.as_bytes();
    let lower = template.to_ascii_lowercase();
    let mut letters = Vec::new();
    for word in ["project", OTHER] {
        for (at, _) in lower.match_indices(word) {
            letters.extend(at..at + word.len());
        }
    }
    let separators: Vec<usize> = (3..bytes.len())
        .filter(|&i| b"/.\\?&=;".contains(&bytes[i]))
        .collect();
    let choices: &[Spelling] = match separators.len() {
        0..=7 => &[Spelling::Raw, Spelling::Upper, Spelling::Lower],
        _ => &[Spelling::Raw, Spelling::Upper],
    };
    let mut separator_sets: Vec<Choice> = vec![Vec::new()];
    for &at in &separators {
        separator_sets = separator_sets
            .into_iter()
            .flat_map(|set| {
                choices.iter().map(move |&c| {
                    let mut set = set.clone();
                    set.push((at, c));
                    set
                })
            })
            .collect();
    }
    separator_sets.extend(separators.iter().map(|&at| vec![(at, Spelling::Double)]));
    let all = |positions: &[usize], spelling| positions.iter().map(|&at| (at, spelling)).collect();
    let mut letter_sets: Vec<Choice> = vec![all(&letters, Spelling::Lower)];
    for &at in &letters {
        for one in [Spelling::Upper, Spelling::Lower, Spelling::Double] {
            letter_sets.push(vec![(at, one)]);
        }
    }
    let mut out = Vec::new();
    for separators in &separator_sets {
        for uniform in [Spelling::Raw, Spelling::Upper] {
            out.push(spell(bytes, separators, &all(&letters, uniform)));
        }
    }
    for letters in &letter_sets {
        for uniform in [Spelling::Raw, Spelling::Upper, Spelling::Lower] {
            out.push(spell(bytes, &all(&separators, uniform), letters));
        }
    }
    out
}

/// Where a spelling writes a character other than raw, and how.
type Choice = Vec<(usize, Spelling)>;

fn spell(template: &[u8], separators: &Choice, letters: &Choice) -> String {
    let mut chosen = vec![Spelling::Raw; template.len()];
    for &(at, spelling) in separators.iter().chain(letters) {
        chosen[at] = spelling;
    }
    let mut spelled = String::new();
    for (&byte, &spelling) in template.iter().zip(&chosen) {
        write(&mut spelled, byte, spelling);
    }
    spelled
}

fn decode(text: &str, rounds: usize) -> String {
    let mut text = text.to_owned();
    for _ in 0..rounds {
        let again = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if again == text {
            break;
        }
        text = again;
    }
    text
}

/// One way an origin might read a target: path segments and query pairs, lowercased.
#[derive(Debug)]
struct View {
    segments: Vec<String>,
    query: Vec<(String, String)>,
}

/// The ways an origin might read `target`: percent-decoded never, once, or as often as it
/// decodes, before or after splitting off the query; `\` read as `/`; `;` parameters cut off
/// (servlet containers); trailing dots cut off (Windows); dot segments resolved; empty
/// segments dropped; query pairs split at `&` or `;`; everything lowercased.
fn origin_views(target: &str) -> Vec<View> {
    let mut views = Vec::new();
    for rounds in [0, 1, usize::MAX] {
        for decode_first in [false, true] {
            let whole = match decode_first {
                true => decode(target, rounds),
                false => target.to_owned(),
            };
            let (path, query) = whole.split_once('?').unwrap_or((&whole, ""));
            let (path, query) = match decode_first {
                true => (path.to_owned(), query.to_owned()),
                false => (decode(path, rounds), decode(query, rounds)),
            };
            let mut segments: Vec<String> = Vec::new();
            for segment in path.replace('\\', "/").to_lowercase().split('/') {
                let segment = segment.split(';').next().unwrap_or_default();
                let segment = match segment {
                    "." | ".." => segment,
                    other => other.trim_end_matches(['.', ' ']),
                };
                match segment {
                    "" | "." => {}
                    ".." => {
                        segments.pop();
                    }
                    other => segments.push(other.to_owned()),
                }
            }
            let query = query
                .to_lowercase()
                .split(['&', ';'])
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name.to_owned(), value.to_owned())
                })
                .collect();
            views.push(View { segments, query });
        }
    }
    views
}

fn mentions_project(text: &str) -> bool {
    super::mentions_project(text.bytes())
}

/// Whether every project this view names (the segment after any segment mentioning
/// `project`, the value of any query parameter whose name does) is [`OWN`].
fn names_only_own(view: &View) -> bool {
    let by_path = view.segments.windows(2).filter(|w| mentions_project(&w[0]));
    let by_query = view.query.iter().filter(|(name, _)| mentions_project(name));
    by_path.map(|w| &w[1]).all(|id| id == OWN) && by_query.map(|(_, v)| v).all(|id| id == OWN)
}

/// Attack shapes from issue 16 and more: another project by an empty segment, another case,
/// an encoded `/`, a dot segment (escaped or not), a backslash, `;` parameters, a trailing dot,
/// a second `projects`, the query.
const ATTACKS: &[&str] = &[
    "/v1/projects/evil/ingest",
    "/v1//projects/evil/ingest",
    "/v1/Projects/evil/ingest",
    "/v1/PROJECTS/evil/ingest",
    "/v1/project/evil/ingest",
    "/v1/projects./evil/ingest",
    "/v1/projects/evil",
    "/v1/projects/ours/../evil/ingest",
    "/v1/projects/ours/..\\evil/ingest",
    "/v1/projects/ours/./../evil/ingest",
    "/v1/projects/ours/..;/evil/ingest",
    "/v1/ingest/../projects/evil/ingest",
    "/v1/projects/ours/../../v1/projects/evil/ingest",
    "/v1/projects/ours/projects/evil/ingest",
    "/v1/x/projects/evil/ingest",
    "/v1/projects/ours/ingest?project_id=evil",
    "/v1/projects/ours/ingest?projectId=evil",
    "/v1/projects/ours/ingest?project=evil",
    "/v1/ingest?a=1&project_id=evil",
    "/v1/ingest?a=1;project_id=evil",
    "/v1/ingest?a=1&Project-Id=evil",
];

#[test]
fn generated_spellings_never_reach_the_origin_naming_another_project() {
    let grant = grant();
    let (mut tried, mut refused) = (0, 0);
    for template in ATTACKS {
        for spelled in spellings(template) {
            tried += 1;
            let Ok(path) = parse(&spelled) else {
                refused += 1;
                continue;
            };
            if check_project(&grant, &path, None).is_err() {
                refused += 1;
                continue;
            }
            // Forwarded: exactly what came in, and no reading of it names another project.
            assert_eq!(path.target(), spelled);
            for view in origin_views(path.target()) {
                assert!(
                    names_only_own(&view),
                    "{spelled} reaches the origin as {view:?}"
                );
            }
        }
    }
    assert!(tried > 20_000, "{tried} spellings");
    assert_eq!(refused, tried, "every attack spelling is refused");
    // The oracle can tell: each attack, as written, names the other project by some reading.
    for template in ATTACKS {
        let views = origin_views(template);
        assert!(!views.iter().all(names_only_own), "{template}");
    }
    // And the own project's plain spellings pass, through the same checks.
    for own in [
        "/v1/projects/ours/ingest",
        "/v1/ingest?batch=7",
        "/v1/x/ingest",
    ] {
        let path = parse(own).unwrap();
        assert!(check_project(&grant, &path, None).is_ok(), "{own}");
        assert!(origin_views(own).iter().all(names_only_own), "{own}");
    }
}
