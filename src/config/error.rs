//! Config errors. Each renders as one line, `FILE:LINE:COL: KEY: what is wrong`, because
//! `cgigate check` and start-up print exactly that line (SPEC §1).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_path_to_error::{Path as KeyPath, Segment};

/// Where in a config file something is. `line` and `column` are 1-based; 0 means unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The config file, as it was named to [`super::Config::load`].
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column in characters, 0 when unknown.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

/// Why a config file could not be used.
///
/// `Display` is the complete one-line message (the underlying error's text included), so print
/// it alone rather than walking `source()`. Key paths name array entries 1-based: `route[2]`
/// is the second `[[route]]`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("{at}: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// What the parser expected.
        message: String,
        /// The parser's own error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A key is unknown, missing, of the wrong type, or has a value the server cannot use.
    #[error("{at}: {key}: {message}")]
    Invalid {
        /// The offending value (or key, or table).
        at: Location,
        /// The key path, e.g. `server.header_timeout` or `route[2].prefix`.
        key: String,
        /// What is wrong, and where useful what is expected.
        message: String,
        /// The deserializer's error, when the problem was found while deserializing.
        #[source]
        source: Option<Box<toml::de::Error>>,
    },
}

impl ConfigError {
    /// The position of the problem in the file, if it is known.
    #[must_use]
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Syntax { at, .. } | ConfigError::Invalid { at, .. } => Some(at),
        }
    }

    /// The key path the problem is about, if there is one.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The text being parsed and its file name: turns byte spans into [`Location`]s and builds
/// errors that point into the file.
pub(crate) struct Source<'a> {
    text: &'a str,
    file: &'a Path,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str, file: &'a Path) -> Self {
        Source { text, file }
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.location(offset).line
    }

    fn location(&self, offset: usize) -> Location {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: self.file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    fn location_of(&self, span: Option<Range<usize>>) -> Location {
        span.map_or_else(
            || Location {
                file: self.file.to_path_buf(),
                line: 0,
                column: 0,
            },
            |span| self.location(span.start),
        )
    }

    /// An error about the value (or table) at `span`.
    pub(crate) fn invalid(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            at: self.location(span.start),
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Translates a deserialization error: serde's wording becomes the file's wording.
    pub(crate) fn deserialize_error(
        &self,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> ConfigError {
        let mut key = render_key_path(err.path());
        let inner = err.into_inner();
        let at = self.location_of(inner.span());
        let (missing, message) = reword(inner.message());
        if let Some(missing) = missing {
            key = join_key(&key, &missing);
        }
        if key.is_empty() {
            ConfigError::Syntax {
                at,
                message,
                source: Box::new(inner),
            }
        } else {
            ConfigError::Invalid {
                at,
                key,
                message,
                source: Some(Box::new(inner)),
            }
        }
    }
}

/// `server.listen[1]`, `cgi.interpreters.".py"`: the path as a TOML user writes it, without the
/// private keys `toml::Spanned` adds, with array entries counted from 1.
fn render_key_path(path: &KeyPath) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{}]", index + 1)),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out = join_key(&out, &quote_key(key));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Appends `key` to a dotted path.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Quotes a key the way TOML requires when it is not a bare key.
fn quote_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Rewords serde's messages for people editing a file. Returns the name of a missing key
/// (serde reports it on the enclosing table) and the message.
fn reword(message: &str) -> (Option<String>, String) {
    let message = message.trim().replace('\n', "; ");
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((_, expected)) = rest.split_once("`, ") {
            return (None, format!("unknown key ({})", expected_list(expected)));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((value, expected)) = rest.split_once("`, ") {
            return (
                None,
                format!("unknown value {value:?} ({})", expected_list(expected)),
            );
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        return (Some(name.to_owned()), "required key is missing".to_owned());
    }
    (None, message)
}

/// "expected one of `a`, `b`" → "expected one of a, b"; "there are no fields" → plain words.
fn expected_list(serde_text: &str) -> String {
    if serde_text.starts_with("there are no") {
        return "no keys are allowed here".to_owned();
    }
    serde_text.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let src = Source::new("a = 1\nbé = \"x\"\n", Path::new("c.toml"));
        assert_eq!(src.location(0).to_string(), "c.toml:1:1");
        assert_eq!(src.location(6).to_string(), "c.toml:2:1");
        // "bé = " is 5 characters but 6 bytes.
        assert_eq!(src.location(12).to_string(), "c.toml:2:6");
        assert_eq!(src.location_of(None).to_string(), "c.toml");
    }

    #[test]
    fn serde_wording_is_replaced() {
        assert_eq!(
            reword("unknown field `listn`, expected one of `listen`, `max_connections`"),
            (
                None,
                "unknown key (expected one of listen, max_connections)".to_owned()
            )
        );
        assert_eq!(
            reword("unknown field `x`, expected `cert`").1,
            "unknown key (expected cert)"
        );
        assert_eq!(
            reword("unknown field `x`, there are no fields").1,
            "unknown key (no keys are allowed here)"
        );
        assert_eq!(
            reword("unknown variant `fast`, expected one of `buffer`, `stream`, `auto`").1,
            "unknown value \"fast\" (expected one of buffer, stream, auto)"
        );
        assert_eq!(
            reword("missing field `cert`"),
            (
                Some("cert".to_owned()),
                "required key is missing".to_owned()
            )
        );
        assert_eq!(reword("line one\nline two\n").1, "line one; line two");
    }

    #[test]
    fn keys_are_quoted_when_not_bare() {
        assert_eq!(quote_key("max_children"), "max_children");
        assert_eq!(quote_key(".py"), "\".py\"");
        assert_eq!(join_key("", "server"), "server");
        assert_eq!(join_key("server", "listen"), "server.listen");
    }
}
