//! The config file (SPEC §2): TOML → a validated [`Config`] with every default applied, every
//! relative path resolved against the file's folder, and every route's output and CGI settings
//! merged from the server-wide sections. Errors name the file, line, column and key.
//!
//! Layout: `model` is the validated config's types and defaults, `raw` the file as written,
//! `units` the value syntax (durations, sizes, addresses), `build` checks sections and applies
//! defaults, `route` checks `[[route]]` tables, and `error` renders positions. This file only
//! ties them together, so no part of it is used by the parts.

mod build;
mod error;
mod isolation;
mod model;
mod raw;
mod route;
mod units;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Location};
pub use model::*;
pub(crate) use route::check_prefix;
pub(crate) use units::{format_size, parse_duration};

use build::Builder;
use error::Source;
use raw::RawConfig;

impl Config {
    /// Load and validate a file. Relative paths in it are resolved against the file's folder.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if the file cannot be read, otherwise as [`Config::from_str_at`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str_at(&text, path)
    }

    /// Parse from text (used by load and by tests); `path` is used for messages and `base_dir`.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for text that is not TOML, [`ConfigError::Invalid`] for an
    /// unknown or missing key, a value of the wrong type, or one the server cannot use.
    pub fn from_str_at(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let src = Source::new(text, path);
        let raw: RawConfig = serde_path_to_error::deserialize(toml::de::Deserializer::new(text))
            .map_err(|err| src.deserialize_error(err))?;
        let ctx = Builder {
            src,
            base_dir: folder_of(path),
        };
        let server = ctx.server(raw.server)?;
        let log = ctx.log(raw.log)?;
        let output = ctx.output(OutputConfig::default(), raw.output, "output", "mode")?;
        let cgi = ctx.cgi(CgiConfig::default(), raw.cgi, "cgi")?;
        let routes = route::build_routes(&ctx, raw.route, &output, &cgi)?;
        let tls = raw
            .tls
            .map(|tls| ctx.tls(tls, &server.listen, &server.trusted_proxies))
            .transpose()?;
        Ok(Config {
            server,
            log,
            output,
            cgi,
            routes,
            tls,
            base_dir: ctx.base_dir,
            source: Some(path.to_path_buf()),
        })
    }
}

/// The folder relative paths are resolved against, made absolute so it does not depend on the
/// current directory staying the same.
fn folder_of(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
}
