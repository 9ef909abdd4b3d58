//! Inputs by the thousand: what a user types after `--input`, expanded at plan time into the
//! objects a run reads.
//!
//! Each spec is one of:
//! - a file or object (`a.laz`, `s3://bucket/a.laz`, `https://host/a.tif`), taken as it is;
//! - a directory (`tiles/`) or S3 prefix (`s3://bucket/tiles/`, or `s3://bucket/tiles` where
//!   no such object exists): the files directly in it whose names end in one of the accepted
//!   extensions (case-insensitive; hidden names skipped), like lidR's `readLAScatalog(folder)`;
//! - a glob (`tiles/*.laz`, `s3://bucket/pnoa/**/*.laz`): `*` and `?` within a path segment,
//!   `[a-z]`/`[!0]` classes, `**` any number of segments, hidden names only when the pattern
//!   says `.` (see [`glob_match`]); matched against the listing of the literal part before
//!   the first wildcard;
//! - `@list.txt` (any URI after `@`): one spec per line, blank lines and `#` comments skipped,
//!   relative paths taken relative to the working directory (as `gdalbuildvrt
//!   -input_file_list` does); lists may name lists, four deep at most.
//!
//! The result keeps the order of the specs, each expansion sorted by URI, every URI once.
//! A spec that matches nothing is an error naming it; so is a run of more than
//! [`MAX_INPUTS`] inputs. Folders, prefixes and globs never give objects under the run's own
//! output location (a rerun must not read what the previous run wrote); one whose every
//! match lies there is an error. Files named one by one are taken as they are.

use std::collections::HashSet;

use crate::error::{StoreError, human_bytes};
use crate::task::TaskError;
use crate::uri::Location;
use crate::{MAX_JSON_BYTES, ObjectMeta, Store};

/// The most inputs one run accepts.
pub const MAX_INPUTS: usize = 1_000_000;

/// How deep `@list` files may name other lists.
const MAX_LIST_DEPTH: usize = 4;

/// Remote objects whose size is asked for at once.
const INFO_CONCURRENCY: usize = 16;

/// Why a set of input specs could not be expanded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A directory, prefix or glob matched no accepted file.
    #[error("no input matches {spec}{}", if accepted.is_empty() { String::new() } else { format!(" (looked for names ending in {accepted})") })]
    NoMatch { spec: String, accepted: String },
    /// A glob that cannot be expanded (a wildcard in an S3 bucket name, an HTTP URL).
    #[error("cannot expand {spec}: {reason}")]
    BadGlob { spec: String, reason: String },
    /// Everything a folder, prefix or glob matched lies under the run's output location.
    #[error(
        "everything {spec} matches lies under the output {output}: choose an output outside the inputs"
    )]
    UnderOutput { spec: String, output: String },
    /// A line of an `@list` file is not usable.
    #[error("{uri}: line {line}: {reason}")]
    ListFile {
        uri: String,
        line: usize,
        reason: String,
    },
    /// More inputs than [`MAX_INPUTS`].
    #[error("{count} inputs is more than the {max} one run accepts")]
    TooMany { count: usize, max: usize },
    /// Listing or reading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InputError> for TaskError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Store(s) => s.into(),
            other => TaskError::invalid_input(other.to_string()),
        }
    }
}

/// The expanded inputs of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputSet {
    /// Every input once, in the order of the specs (each expansion sorted by URI).
    pub objects: Vec<ObjectMeta>,
    /// Inputs named more than once (by two specs, or twice in a list), kept once.
    pub duplicates: usize,
}

impl InputSet {
    /// The inputs' URIs.
    pub fn uris(&self) -> Vec<String> {
        self.objects.iter().map(|o| o.uri.clone()).collect()
    }

    /// Their total size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    /// One line for the plan: `516 inputs, 74.5 GiB` (and how many were named twice).
    pub fn summary(&self) -> String {
        let n = self.objects.len();
        let mut s = format!(
            "{n} input{}, {}",
            if n == 1 { "" } else { "s" },
            human_bytes(self.total_bytes())
        );
        if self.duplicates > 0 {
            s.push_str(&format!(" ({} named twice, read once)", self.duplicates));
        }
        s
    }
}

/// What to expand and how.
#[derive(Debug, Clone, Default)]
pub struct Expansion<'a> {
    /// Extensions (with the dot, any case: `.laz`) that directories and prefixes give;
    /// empty = every file. Globs and explicit files are not filtered.
    pub extensions: &'a [&'a str],
    /// The run's output location: folders, prefixes and globs give nothing under it.
    pub exclude: Option<&'a str>,
}

impl<'a> Expansion<'a> {
    /// Directories and prefixes give the files ending in one of `extensions`.
    pub fn new(extensions: &'a [&'a str]) -> Self {
        Expansion {
            extensions,
            exclude: None,
        }
    }

    /// Nothing under `output` is taken as an input.
    pub fn excluding(mut self, output: &'a str) -> Self {
        self.exclude = Some(output);
        self
    }

    /// Expands `specs` (see the module documentation).
    pub fn expand(&self, store: &Store, specs: &[String]) -> Result<InputSet, InputError> {
        let mut found = Vec::new();
        for spec in specs {
            self.expand_spec(store, spec, 0, &mut found)?;
            if found.len() > MAX_INPUTS {
                return Err(InputError::TooMany {
                    count: found.len(),
                    max: MAX_INPUTS,
                });
            }
        }
        let named: Vec<(usize, &str)> = found
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                Found::Named(uri) => Some((i, uri.as_str())),
                Found::Listed(_) => None,
            })
            .collect();
        let sizes = sizes_of(store, &named)?;
        let mut set = InputSet::default();
        let mut seen = HashSet::new();
        for (i, f) in found.into_iter().enumerate() {
            let meta = match f {
                Found::Listed(m) => m,
                Found::Named(uri) => ObjectMeta {
                    uri,
                    size: sizes.get(&i).copied().unwrap_or(0),
                },
            };
            if seen.insert(comparable(&meta.uri)) {
                set.objects.push(meta);
            } else {
                set.duplicates += 1;
            }
        }
        Ok(set)
    }

    fn expand_spec(
        &self,
        store: &Store,
        spec: &str,
        depth: usize,
        out: &mut Vec<Found>,
    ) -> Result<(), InputError> {
        let spec = spec.trim();
        if let Some(list) = spec.strip_prefix('@') {
            return self.expand_list(store, list, depth, out);
        }
        if let Some((base, pattern)) = split_glob(spec) {
            return self.expand_glob(store, spec, &base, &pattern, out);
        }
        match Location::parse(spec)? {
            Location::Local(path) => match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => self.expand_dir(store, spec, out),
                // Files (and what is not one: the read says so, naming it).
                _ => {
                    out.push(Found::Named(spec.to_string()));
                    Ok(())
                }
            },
            Location::S3 { key, .. } if key.is_empty() || key.ends_with('/') => {
                self.expand_dir(store, spec, out)
            }
            Location::S3 { .. } => match store.info(spec) {
                Ok(info) => {
                    out.push(Found::Listed(ObjectMeta {
                        uri: spec.to_string(),
                        size: info.size,
                    }));
                    Ok(())
                }
                // `s3://bucket/tiles` where no such object exists: the prefix `tiles/`.
                Err(e) if e.is_not_found() => {
                    let base = format!("{spec}/");
                    let listed = store.list(&base)?;
                    if listed.is_empty() {
                        return Err(e.into());
                    }
                    self.take_dir(&base, listed, out)
                }
                Err(e) => Err(e.into()),
            },
            Location::Http(_) => {
                out.push(Found::Named(spec.to_string()));
                Ok(())
            }
        }
    }

    /// The accepted files directly in a directory or under an S3 prefix ending in `/`.
    fn expand_dir(&self, store: &Store, dir: &str, out: &mut Vec<Found>) -> Result<(), InputError> {
        let base = format!("{}/", dir.trim_end_matches('/'));
        let listed = store.list(&base)?;
        self.take_dir(&base, listed, out)
    }

    /// The accepted files of `listed` directly under `base`.
    fn take_dir(
        &self,
        base: &str,
        listed: Vec<ObjectMeta>,
        out: &mut Vec<Found>,
    ) -> Result<(), InputError> {
        let (before, mut excluded) = (out.len(), 0);
        for m in listed {
            let Some(rel) = m.uri.strip_prefix(base) else {
                continue;
            };
            if rel.contains('/') || rel.starts_with('.') || !self.accepts(rel) {
                continue;
            }
            if self.excluded(&m.uri) {
                excluded += 1;
                continue;
            }
            out.push(Found::Listed(m));
        }
        self.matched(
            base,
            out.len() - before,
            excluded,
            &self.extensions.join(", "),
        )
    }

    fn expand_glob(
        &self,
        store: &Store,
        spec: &str,
        base: &str,
        pattern: &str,
        out: &mut Vec<Found>,
    ) -> Result<(), InputError> {
        let bad = |reason: &str| InputError::BadGlob {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if base.starts_with("http://") || base.starts_with("https://") {
            return Err(bad("HTTP(S) locations cannot be listed"));
        }
        if spec.starts_with("s3://") && base.len() <= "s3://".len() {
            return Err(bad("the bucket name cannot hold a wildcard"));
        }
        let listed_base = if base.is_empty() { "./" } else { base };
        Location::parse(listed_base)?;
        let (before, mut excluded) = (out.len(), 0);
        for m in store.list(listed_base)? {
            let Some(rel) = m.uri.strip_prefix(listed_base) else {
                continue;
            };
            if !glob_match(pattern, rel) {
                continue;
            }
            let uri = if base.is_empty() {
                rel.to_string()
            } else {
                m.uri.clone()
            };
            if self.excluded(&uri) {
                excluded += 1;
                continue;
            }
            out.push(Found::Listed(ObjectMeta { uri, size: m.size }));
        }
        self.matched(spec, out.len() - before, excluded, "")
    }

    /// Whether a listed object lies under the run's output (never when the output is the
    /// working directory itself).
    fn excluded(&self, uri: &str) -> bool {
        let Some(out) = self.exclude else {
            return false;
        };
        let out = comparable(out.trim_end_matches('/'));
        !out.is_empty() && out != "." && comparable(uri).starts_with(&format!("{out}/"))
    }

    /// The outcome of a listing that gave `kept` inputs and left `excluded` out.
    fn matched(
        &self,
        spec: &str,
        kept: usize,
        excluded: usize,
        accepted: &str,
    ) -> Result<(), InputError> {
        if kept > 0 {
            return Ok(());
        }
        if excluded > 0 {
            return Err(InputError::UnderOutput {
                spec: spec.to_string(),
                output: self.exclude.unwrap_or_default().to_string(),
            });
        }
        Err(InputError::NoMatch {
            spec: spec.to_string(),
            accepted: accepted.to_string(),
        })
    }

    fn expand_list(
        &self,
        store: &Store,
        uri: &str,
        depth: usize,
        out: &mut Vec<Found>,
    ) -> Result<(), InputError> {
        if depth >= MAX_LIST_DEPTH {
            return Err(InputError::ListFile {
                uri: uri.to_string(),
                line: 0,
                reason: format!("lists name lists more than {MAX_LIST_DEPTH} deep"),
            });
        }
        let bytes = store.get_capped(uri, MAX_JSON_BYTES)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| InputError::ListFile {
            uri: uri.to_string(),
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            reason: "not UTF-8 text".to_string(),
        })?;
        let before = out.len();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.expand_spec(store, line, depth + 1, out)
                .map_err(|e| match e {
                    InputError::Store(s) => InputError::ListFile {
                        uri: uri.to_string(),
                        line: i + 1,
                        reason: s.to_string(),
                    },
                    InputError::NoMatch { .. } | InputError::BadGlob { .. } => {
                        InputError::ListFile {
                            uri: uri.to_string(),
                            line: i + 1,
                            reason: e.to_string(),
                        }
                    }
                    other => other,
                })?;
            if out.len() > MAX_INPUTS {
                return Err(InputError::TooMany {
                    count: out.len(),
                    max: MAX_INPUTS,
                });
            }
        }
        if out.len() == before {
            return Err(InputError::ListFile {
                uri: uri.to_string(),
                line: 0,
                reason: "names no input".to_string(),
            });
        }
        Ok(())
    }

    fn accepts(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.extensions.is_empty()
            || self
                .extensions
                .iter()
                .any(|e| lower.ends_with(&e.to_ascii_lowercase()))
    }
}

/// An input found by expansion: listed (size known) or named as it is (size asked later).
enum Found {
    Listed(ObjectMeta),
    Named(String),
}

/// Sizes of the inputs named as they are (`(index, uri)`), asked concurrently.
fn sizes_of(
    store: &Store,
    named: &[(usize, &str)],
) -> Result<std::collections::HashMap<usize, u64>, StoreError> {
    let mut sizes = std::collections::HashMap::new();
    for chunk in named.chunks(INFO_CONCURRENCY) {
        let results: Vec<(usize, Result<u64, StoreError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(i, uri)| (i, s.spawn(move || store.head(uri))))
                .collect();
            handles
                .into_iter()
                .map(|(i, h)| {
                    let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                    (i, r)
                })
                .collect()
        });
        for (i, r) in results {
            sizes.insert(i, r?);
        }
    }
    Ok(sizes)
}

/// A URI as compared for duplicates and exclusion: `file://` and a leading `./` dropped.
fn comparable(uri: &str) -> String {
    let u = uri.strip_prefix("file://").unwrap_or(uri);
    u.strip_prefix("./").unwrap_or(u).to_string()
}

/// Splits a glob into its literal base (up to the `/` before the first wildcard segment,
/// `""` for the working directory) and the pattern after it; `None` when `spec` holds no
/// wildcard (`*`, `?`, `[`).
pub fn split_glob(spec: &str) -> Option<(String, String)> {
    let first = spec.find(['*', '?', '['])?;
    let cut = spec[..first].rfind('/').map_or(0, |i| i + 1);
    Some((spec[..cut].to_string(), spec[cut..].to_string()))
}

/// Whether `path` (segments separated by `/`) matches the glob `pattern`.
///
/// `*` matches any run of characters within a segment, `?` one character, `[abc]`, `[a-z]`
/// and `[!0-9]` one character of (or not of) a class; a segment that is exactly `**` matches
/// any number of segments, none included. As in a shell, a name starting with `.` is matched
/// only by a pattern segment starting with `.`. Matching is case-sensitive, as S3 keys are.
///
/// ```
/// use cloud::inputs::glob_match;
/// assert!(glob_match("**/*.laz", "2023/PNOA_2023_MUR_620-4186.laz"));
/// assert!(glob_match("**/*.laz", "top.laz"));
/// assert!(!glob_match("*.laz", "2023/PNOA_2023_MUR_620-4186.laz"));
/// assert!(glob_match("PNOA_20[12]?_*", "PNOA_2016_MUR.laz"));
/// ```
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    // matches[j]: pattern segments i.. match path segments j.. (filled from the end).
    let mut next = vec![false; segs.len() + 1];
    next[segs.len()] = true;
    for i in (0..pat.len()).rev() {
        let mut cur = vec![false; segs.len() + 1];
        for j in (0..=segs.len()).rev() {
            cur[j] = if pat[i] == "**" {
                next[j] || (j < segs.len() && !segs[j].starts_with('.') && cur[j + 1])
            } else {
                j < segs.len()
                    && next[j + 1]
                    && (pat[i].starts_with('.') || !segs[j].starts_with('.'))
                    && segment_match(pat[i], segs[j])
            };
        }
        next = cur;
    }
    next[0]
}

/// One pattern element of a segment.
enum Token {
    Char(char),
    One,
    Star,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
}

fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::One),
            '[' => {
                // A class runs to the next `]` (a `]` first in the class is a member); an
                // unclosed `[` is a literal.
                let mut j = i + 1;
                let negated = matches!(chars.get(j), Some('!' | '^'));
                if negated {
                    j += 1;
                }
                let start = j;
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push(Token::Char('['));
                } else {
                    let members = &chars[start..j];
                    let mut ranges = Vec::new();
                    let mut k = 0;
                    while k < members.len() {
                        if k + 2 < members.len() && members[k + 1] == '-' {
                            ranges.push((members[k], members[k + 2]));
                            k += 3;
                        } else {
                            ranges.push((members[k], members[k]));
                            k += 1;
                        }
                    }
                    out.push(Token::Class { ranges, negated });
                    i = j;
                }
            }
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

/// Wildcard match of one segment: linear backtracking to the last `*` (O(n·m) at worst).
fn segment_match(pattern: &str, name: &str) -> bool {
    let toks = tokens(pattern);
    let name: Vec<char> = name.chars().collect();
    let one = |t: &Token, c: char| match t {
        Token::Char(p) => *p == c,
        Token::One => true,
        Token::Class { ranges, negated } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star => false,
    };
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if t < toks.len() && matches!(toks[t], Token::Star) {
            star = Some((t, n));
            t += 1;
        } else if t < toks.len() && one(&toks[t], name[n]) {
            t += 1;
            n += 1;
        } else if let Some((st, sn)) = star {
            t = st + 1;
            n = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    toks[t..].iter().all(|t| matches!(t, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_match("*.laz", "a.laz"));
        assert!(!glob_match("*.laz", "a.las"));
        assert!(!glob_match("*.laz", "d/a.laz"));
        assert!(glob_match("*/*.laz", "d/a.laz"));
        assert!(glob_match("**/*.laz", "a.laz"));
        assert!(glob_match("**/*.laz", "x/y/z/a.laz"));
        assert!(glob_match("x/**/a.laz", "x/a.laz"));
        assert!(glob_match("x/**", "x/y/z"));
        assert!(!glob_match("x/**/b.laz", "x/y/a.laz"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
        assert!(glob_match("[]]x", "]x"));
        assert!(glob_match("a[b", "a[b"), "an unclosed class is literal");
        assert!(glob_match("*a*b*c", "xxaxxbxxc"));
        assert!(!glob_match("*a*b*c", "xxaxxcxxb"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*.laz", ".hidden.laz"));
        assert!(glob_match(".*.laz", ".hidden.laz"));
        assert!(!glob_match("**/a.laz", ".git/a.laz"));
        assert!(!glob_match("?", ""));
        // Case-sensitive, as S3 keys are.
        assert!(!glob_match("*.LAZ", "a.laz"));
        // Many stars cannot make it blow up.
        let long = "a".repeat(2000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(30)), &long));
        assert!(glob_match(&"*a".repeat(30), &long));
        assert!(glob_match(&"**/".repeat(50), &"x/".repeat(200)));
    }

    #[test]
    fn globs_split_at_the_segment_of_the_first_wildcard() {
        let s = |x: &str| split_glob(x);
        assert_eq!(s("tiles/a.laz"), None);
        assert_eq!(s("tiles/*.laz"), Some(("tiles/".into(), "*.laz".into())));
        assert_eq!(s("*.laz"), Some(("".into(), "*.laz".into())));
        assert_eq!(
            s("s3://b/pnoa/2023/**/MUR_*.laz"),
            Some(("s3://b/pnoa/2023/".into(), "**/MUR_*.laz".into()))
        );
        assert_eq!(s("d/ab*/c"), Some(("d/".into(), "ab*/c".into())));
    }
}
