//! `[[route]]` tables → [`Route`]s: the prefix, exactly one kind, and the route's output and
//! CGI overrides on top of `[output]` and `[cgi]`.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::build::Builder;
use super::error::{join_key, ConfigError};
use super::model::{CgiConfig, OutputConfig, Route, RouteKind};
use super::raw::{Field, RawRoute, RawRouteHead};
use crate::handlers::BUILTINS;

/// The keys that say what a route is; exactly one must be set.
const KIND_KEYS: &str = "handler, static_dir, cgi_dir, cgi_script, plugin";

/// Builds every route in file order; a prefix used twice is an error naming both lines.
pub(crate) fn build_routes(
    ctx: &Builder<'_>,
    raws: Vec<Spanned<RawRoute>>,
    output: &OutputConfig,
    cgi: &CgiConfig,
) -> Result<Vec<Route>, ConfigError> {
    let mut routes: Vec<Route> = Vec::with_capacity(raws.len());
    let mut lines_by_prefix: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let table = format!("route[{}]", i + 1);
        let (route, prefix_span) = build_route(ctx, raw, &table, output, cgi)?;
        if let Some((first, first_line)) = lines_by_prefix.get(&route.prefix) {
            let message = format!(
                "prefix {:?} is also used by route[{first}] at line {first_line}",
                route.prefix
            );
            return Err(ctx
                .src
                .invalid(prefix_span, join_key(&table, "prefix"), message));
        }
        lines_by_prefix.insert(route.prefix.clone(), (i + 1, route.line));
        routes.push(route);
    }
    Ok(routes)
}

/// One route and the span of its prefix (for the duplicate check).
fn build_route(
    ctx: &Builder<'_>,
    raw: Spanned<RawRoute>,
    table: &str,
    output: &OutputConfig,
    cgi: &CgiConfig,
) -> Result<(Route, Range<usize>), ConfigError> {
    let span = raw.span();
    let (mut head, raw_output, raw_cgi) = raw.into_inner().split();
    if let Some(max_children) = &head.max_children {
        return Err(ctx.src.invalid(
            max_children.span(),
            join_key(table, "max_children"),
            "max_children is server-wide; set it in [cgi]",
        ));
    }
    let Some(prefix) = head.prefix.take() else {
        return Err(ctx
            .src
            .invalid(span, join_key(table, "prefix"), "required key is missing"));
    };
    let prefix_span = prefix.span();
    let prefix = prefix.into_inner();
    if let Err(message) = check_prefix(&prefix) {
        let key = join_key(table, "prefix");
        return Err(ctx.src.invalid(prefix_span, key, message));
    }
    check_one_kind(ctx, &head, span.clone(), table)?;
    let kind = build_kind(ctx, head, span.clone(), table)?;
    let route = Route {
        prefix,
        kind,
        output: ctx.output(*output, raw_output, table, "output")?,
        cgi: ctx.cgi(cgi.clone(), raw_cgi, table)?,
        line: ctx.src.line_of(span.start),
    };
    Ok((route, prefix_span))
}

/// A prefix must be a plain URL path: `?` and `#` end a path so could never match, and `%`
/// would leave it unclear whether the raw or the decoded path is meant.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!("invalid prefix {prefix:?}: must start with \"/\""));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| matches!(c, '?' | '#' | '%') || c.is_whitespace() || c.is_control())
    {
        return Err(format!("invalid prefix {prefix:?}: must not contain {c:?}"));
    }
    Ok(())
}

/// Exactly one kind key, and `plugin_config` only beside `plugin`.
fn check_one_kind(
    ctx: &Builder<'_>,
    head: &RawRouteHead,
    span: Range<usize>,
    table: &str,
) -> Result<(), ConfigError> {
    let set: Vec<&str> = [
        ("handler", head.handler.is_some()),
        ("static_dir", head.static_dir.is_some()),
        ("cgi_dir", head.cgi_dir.is_some()),
        ("cgi_script", head.cgi_script.is_some()),
        ("plugin", head.plugin.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    if set.len() != 1 {
        let found = if set.is_empty() {
            "none is set".to_owned()
        } else {
            format!("found {}", set.join(", "))
        };
        let message = format!("exactly one of {KIND_KEYS} must be set ({found})");
        return Err(ctx.src.invalid(span, table, message));
    }
    if let (Some(config), None) = (&head.plugin_config, &head.plugin) {
        let key = join_key(table, "plugin_config");
        let message = "plugin_config is only allowed with plugin";
        return Err(ctx.src.invalid(config.span(), key, message));
    }
    Ok(())
}

/// The kind key that is set (see [`check_one_kind`]), checked and resolved.
fn build_kind(
    ctx: &Builder<'_>,
    head: RawRouteHead,
    span: Range<usize>,
    table: &str,
) -> Result<RouteKind, ConfigError> {
    let path = |field: Field<String>, name: &str| -> Result<_, ConfigError> {
        field
            .map(|raw| ctx.path(raw, &join_key(table, name)))
            .transpose()
    };
    if let Some(handler) = head.handler {
        return handler_kind(ctx, handler, table);
    }
    if let Some(dir) = path(head.static_dir, "static_dir")? {
        return Ok(RouteKind::StaticDir(dir));
    }
    if let Some(dir) = path(head.cgi_dir, "cgi_dir")? {
        return Ok(RouteKind::CgiDir(dir));
    }
    if let Some(script) = path(head.cgi_script, "cgi_script")? {
        return Ok(RouteKind::CgiScript(script));
    }
    let plugin = path(head.plugin, "plugin")?;
    let config = head
        .plugin_config
        .map(Spanned::into_inner)
        .unwrap_or_default();
    plugin
        .map(|path| RouteKind::Plugin { path, config })
        .ok_or_else(|| {
            let message = format!("exactly one of {KIND_KEYS} must be set (none is set)");
            ctx.src.invalid(span, table, message)
        })
}

fn handler_kind(
    ctx: &Builder<'_>,
    handler: Spanned<String>,
    table: &str,
) -> Result<RouteKind, ConfigError> {
    let span = handler.span();
    let name = handler.into_inner();
    if BUILTINS.iter().any(|(known, _)| *known == name) {
        return Ok(RouteKind::Handler(name));
    }
    let known: Vec<&str> = BUILTINS.iter().map(|(known, _)| *known).collect();
    let message = format!(
        "unknown handler {name:?} (built-in handlers: {})",
        known.join(", ")
    );
    Err(ctx.src.invalid(span, join_key(table, "handler"), message))
}

#[cfg(test)]
mod tests {
    use super::check_prefix;

    #[test]
    fn prefixes_must_look_like_paths() {
        assert!(check_prefix("/").is_ok());
        assert!(check_prefix("/cgi-bin/").is_ok());
        assert!(check_prefix("/ext/hello").is_ok());
        for bad in [
            "", "cgi-bin/", "/a?b", "/a#b", "/a%20b", "/a b", "/a\tb", "/a\u{7f}",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_prefix("/a?b").unwrap_err(),
            "invalid prefix \"/a?b\": must not contain '?'"
        );
    }
}
