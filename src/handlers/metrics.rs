//! `handler = "metrics"`: the server's counters and histograms in the Prometheus text format
//! (0.0.4), or in OpenMetrics 1.0 when the scraper's Accept header asks for it, as
//! Prometheus does. The numbers live in [`Stats`] and [`Metrics`](crate::metrics::Metrics);
//! this is where they become text, once per scrape, through prometheus-client's encoders.
//! docs/metrics.md lists every series.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::handler::{BoxFuture, Handler, HandlerError, Request};
use crate::metrics::{BadRequest, Handshake, HistogramSnapshot, StopReason};
use crate::response::Response;
use crate::stats::Stats;

/// The Content-Type of OpenMetrics text (OpenMetrics 1.0 §"Overall structure").
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Content-Type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The metrics page.
pub(crate) struct MetricsPage {
    registry: Registry,
}

impl MetricsPage {
    /// A page over the server's counters. Building one turns on the per-route request
    /// series, which cost a request a few clock reads.
    pub(crate) fn new(stats: Arc<Stats>) -> MetricsPage {
        stats.metrics.enable_requests();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Series(stats)));
        MetricsPage { registry }
    }

    /// The exposition, in OpenMetrics or in the Prometheus text format.
    fn render(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        }
        Ok(text)
    }
}

/// Whether Accept values ask for OpenMetrics (Prometheus lists it first; a plain `curl`
/// gets the older text format, which every scraper reads).
fn wants_openmetrics<'a>(accept: impl IntoIterator<Item = &'a [u8]>) -> bool {
    const TYPE: &[u8] = b"application/openmetrics-text";
    accept
        .into_iter()
        .any(|v| v.windows(TYPE.len()).any(|w| w.eq_ignore_ascii_case(TYPE)))
}

impl Handler for MetricsPage {
    fn call<'a>(
        &'a self,
        req: &'a mut Request,
        res: &'a mut Response,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let openmetrics = wants_openmetrics(req.head.headers_named("accept").map(|v| &v[..]));
            let text = self
                .render(openmetrics)
                .map_err(|e| HandlerError::Other(format!("encoding metrics: {e}")))?;
            res.set_header(
                "Content-Type",
                if openmetrics {
                    OPENMETRICS
                } else {
                    PROMETHEUS_TEXT
                },
            );
            res.set_header("Cache-Control", "no-store");
            res.write(text).await
        })
    }
}

/// Every series, read at scrape time.
#[derive(Debug)]
struct Series(Arc<Stats>);

type Written = Result<(), std::fmt::Error>;

impl Collector for Series {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Written {
        self.requests(&mut encoder)?;
        self.connections(&mut encoder)?;
        self.cgi(&mut encoder)?;
        self.refusals(&mut encoder)
    }
}

impl Series {
    /// Requests by route and how they went, and their times.
    fn requests(&self, e: &mut DescriptorEncoder) -> Written {
        let routes = self.0.metrics.routes();
        let mut m = e.encode_descriptor(
            "cgigate_requests",
            "Requests answered, by route prefix, status class, output mode and framing.",
            None,
            MetricType::Counter,
        )?;
        for route in &routes {
            for c in route.requests() {
                let labels = [
                    ("route", route.label()),
                    ("status_class", c.status_class),
                    ("mode", c.mode),
                    ("framing", c.framing),
                ];
                counter(&mut m.encode_family(&labels)?, c.count)?;
            }
        }
        let mut m = e.encode_descriptor(
            "cgigate_response_first_byte",
            "Time from the complete request head to the first response byte written, by route.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for route in &routes {
            let labels = [("route", route.label())];
            histogram(
                &mut m.encode_family(&labels)?,
                &route.first_byte().snapshot(),
            )?;
        }
        let mut m = e.encode_descriptor(
            "cgigate_response",
            "Time from the complete request head to the end of the exchange, by route.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for route in &routes {
            let labels = [("route", route.label())];
            histogram(&mut m.encode_family(&labels)?, &route.total().snapshot())?;
        }
        Ok(())
    }

    /// Connections, TLS handshakes and the access log.
    fn connections(&self, e: &mut DescriptorEncoder) -> Written {
        let snap = self.0.snapshot();
        single_gauge(
            e,
            "cgigate_connections_open",
            "Client connections open now.",
            snap.open_connections,
        )?;
        single_counter(
            e,
            "cgigate_connections_accepted",
            "Client connections accepted.",
            snap.connections_accepted,
        )?;
        let mut m = e.encode_descriptor(
            "cgigate_tls_handshakes",
            "TLS handshakes, by result: full, resumed (a session ID or ticket), failed.",
            None,
            MetricType::Counter,
        )?;
        for result in Handshake::ALL {
            let labels = [("result", result.as_str())];
            counter(
                &mut m.encode_family(&labels)?,
                self.0.metrics.handshakes(result),
            )?;
        }
        single_counter(
            e,
            "cgigate_access_log_dropped",
            "Access log lines dropped because the log target could not keep up.",
            snap.access_log_dropped,
        )
    }

    /// The CGI host.
    fn cgi(&self, e: &mut DescriptorEncoder) -> Written {
        let cgi = &self.0.metrics.cgi;
        single_histogram(
            e,
            "cgigate_cgi_spawn",
            "Time to start a CGI script: from asking for it to its process running.",
            &cgi.spawn.snapshot(),
        )?;
        single_histogram(
            e,
            "cgigate_cgi_queue_wait",
            "Time a CGI request waited for a max_children slot, when it got one.",
            &cgi.queue_wait.snapshot(),
        )?;
        single_gauge(
            e,
            "cgigate_cgi_scripts_running",
            "CGI scripts running now.",
            cgi.running(),
        )?;
        let mut m = e.encode_descriptor(
            "cgigate_cgi_scripts_stopped",
            "CGI scripts the server stopped, by reason.",
            None,
            MetricType::Counter,
        )?;
        for reason in StopReason::ALL {
            let labels = [("reason", reason.as_str())];
            counter(&mut m.encode_family(&labels)?, cgi.stopped(reason))?;
        }
        single_counter(
            e,
            "cgigate_cgi_max_children_rejections",
            "CGI requests answered 503 after queue_timeout without a max_children slot.",
            cgi.no_slot(),
        )?;
        single_counter(
            e,
            "cgigate_cgi_client_limit_rejections",
            "CGI requests answered 503 at once: their client had max_children_per_client scripts.",
            cgi.client_limit(),
        )?;
        single_counter(
            e,
            "cgigate_cgi_helper_restarts",
            "CGI spawn helpers started again after they died.",
            self.0.snapshot().cgi_helper_restarts,
        )
    }

    /// What the server refused itself.
    fn refusals(&self, e: &mut DescriptorEncoder) -> Written {
        let mut m = e.encode_descriptor(
            "cgigate_bad_requests",
            "Requests the server refused itself, by kind (the status it answered with).",
            None,
            MetricType::Counter,
        )?;
        for kind in BadRequest::ALL {
            let labels = [("kind", kind.as_str())];
            counter(
                &mut m.encode_family(&labels)?,
                self.0.metrics.bad_requests(kind),
            )?;
        }
        Ok(())
    }
}

/// A counter family without labels.
fn single_counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Written {
    counter(
        &mut e.encode_descriptor(name, help, None, MetricType::Counter)?,
        value,
    )
}

/// A gauge family without labels.
fn single_gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Written {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A histogram family in seconds, without labels.
fn single_histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> Written {
    let kind = MetricType::Histogram;
    histogram(
        &mut e.encode_descriptor(name, help, Some(&Unit::Seconds), kind)?,
        h,
    )
}

fn counter(m: &mut MetricEncoder, value: u64) -> Written {
    m.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(m: &mut MetricEncoder, h: &HistogramSnapshot) -> Written {
    m.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::framer::{Framing, Mode};
    use openmetrics_parser::{PrometheusType, PrometheusValue};
    use std::time::Duration;

    type Exposition = openmetrics_parser::MetricsExposition<PrometheusType, PrometheusValue>;

    /// The sample of `family` with `labels` (those it lacks are empty).
    fn sample(expo: &Exposition, family: &str, labels: &[(&str, &str)]) -> PrometheusValue {
        let f = expo
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no {family}"));
        let values: Vec<String> = f
            .get_label_names()
            .iter()
            .map(|name| {
                labels
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or_else(String::new, |(_, v)| v.to_string())
            })
            .collect();
        f.get_sample_by_label_values(&values)
            .unwrap_or_else(|| panic!("no {family} {labels:?}"))
            .value
            .clone()
    }

    fn number(v: PrometheusValue) -> f64 {
        match v {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) => n.as_f64(),
            other => panic!("not a counter or gauge: {other:?}"),
        }
    }

    fn page_with_traffic() -> MetricsPage {
        let stats = Arc::new(Stats::default());
        let page = MetricsPage::new(stats.clone());
        let m = &stats.metrics;
        let hello = m.route("/hello");
        let micros = Duration::from_micros;
        for _ in 0..3 {
            hello.record(
                200,
                Some(Mode::Auto),
                Framing::Length,
                Some(micros(50)),
                micros(80),
            );
        }
        m.unrouted()
            .record(404, Some(Mode::Sized(9)), Framing::Length, None, micros(30));
        m.cgi.spawn.observe(Duration::from_millis(2));
        m.cgi.count_stop(StopReason::Idle);
        m.cgi.count_no_slot();
        m.cgi.count_client_limit();
        m.cgi.count_client_limit();
        m.count_handshake(Handshake::Resumed);
        stats.count_error(BadRequest::of_status(431));
        page
    }

    #[test]
    fn a_metrics_route_turns_on_request_timing() {
        let stats = Arc::new(Stats::default());
        assert!(!stats.metrics.is_counting_requests());
        let _page = MetricsPage::new(stats.clone());
        assert!(stats.metrics.is_counting_requests());
    }

    #[test]
    fn the_prometheus_text_parses_and_says_what_happened() {
        let text = page_with_traffic().render(false).expect("encoded");
        let expo = openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("{e:?} in\n{text}"));
        let hello = [
            ("route", "/hello"),
            ("status_class", "2xx"),
            ("mode", "auto"),
            ("framing", "length"),
        ];
        assert_eq!(number(sample(&expo, "cgigate_requests_total", &hello)), 3.0);
        let none = [
            ("route", "(none)"),
            ("status_class", "4xx"),
            ("mode", "sized"),
            ("framing", "length"),
        ];
        assert_eq!(number(sample(&expo, "cgigate_requests_total", &none)), 1.0);
        let PrometheusValue::Histogram(h) =
            sample(&expo, "cgigate_response_seconds", &[("route", "/hello")])
        else {
            panic!("cgigate_response_seconds is a histogram");
        };
        assert_eq!(h.count, Some(3));
        let le = |bound: f64| {
            h.buckets
                .iter()
                .find(|b| b.upper_bound == bound)
                .map(|b| b.count.as_f64())
        };
        assert_eq!(le(0.0001), Some(3.0), "80 µs is in the first bucket: {h:?}");
        assert_eq!(le(f64::INFINITY), Some(3.0));
        let PrometheusValue::Histogram(spawn) = sample(&expo, "cgigate_cgi_spawn_seconds", &[])
        else {
            panic!("cgigate_cgi_spawn_seconds is a histogram");
        };
        assert_eq!(spawn.count, Some(1));
        let counted = [
            ("cgigate_cgi_scripts_stopped_total", ("reason", "idle"), 1.0),
            (
                "cgigate_cgi_scripts_stopped_total",
                ("reason", "timeout"),
                0.0,
            ),
            ("cgigate_tls_handshakes_total", ("result", "resumed"), 1.0),
            ("cgigate_tls_handshakes_total", ("result", "full"), 0.0),
            (
                "cgigate_bad_requests_total",
                ("kind", "head_too_large"),
                1.0,
            ),
        ];
        for (family, label, want) in counted {
            assert_eq!(
                number(sample(&expo, family, &[label])),
                want,
                "{family} {label:?}"
            );
        }
        let plain = [
            ("cgigate_cgi_max_children_rejections_total", 1.0),
            ("cgigate_cgi_client_limit_rejections_total", 2.0),
            ("cgigate_cgi_scripts_running", 0.0),
            ("cgigate_connections_open", 0.0),
            ("cgigate_connections_accepted_total", 0.0),
            ("cgigate_access_log_dropped_total", 0.0),
            ("cgigate_cgi_helper_restarts_total", 0.0),
        ];
        for (family, want) in plain {
            assert_eq!(number(sample(&expo, family, &[])), want, "{family}");
        }
        let types = [
            ("cgigate_requests_total", PrometheusType::Counter),
            (
                "cgigate_response_first_byte_seconds",
                PrometheusType::Histogram,
            ),
            ("cgigate_cgi_queue_wait_seconds", PrometheusType::Histogram),
            ("cgigate_cgi_scripts_running", PrometheusType::Gauge),
        ];
        for (family, want) in types {
            assert_eq!(expo.families[family].family_type, want, "{family}");
        }
    }

    #[test]
    fn the_openmetrics_text_parses_too() {
        let text = page_with_traffic().render(true).expect("encoded");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("# UNIT cgigate_response_seconds seconds\n"),
            "{text}"
        );
        // openmetrics-parser 0.5 refuses UNIT on a histogram, which OpenMetrics 1.0 allows
        // (only Info and StateSet must have none) and prometheus-client writes; the rest is
        // checked by it.
        let without_units: String = text
            .lines()
            .filter(|l| !l.starts_with("# UNIT "))
            .map(|l| format!("{l}\n"))
            .collect();
        let expo = openmetrics_parser::openmetrics::parse_openmetrics(&without_units)
            .unwrap_or_else(|e| panic!("{e:?} in\n{text}"));
        for family in [
            "cgigate_requests",
            "cgigate_response_seconds",
            "cgigate_cgi_scripts_stopped",
            "cgigate_bad_requests",
            "cgigate_connections_open",
        ] {
            assert!(expo.families.contains_key(family), "{family}");
        }
    }

    #[test]
    fn openmetrics_only_when_asked() {
        let prometheus = b"application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
        assert!(wants_openmetrics([&prometheus[..]]));
        assert!(wants_openmetrics([
            &b"text/html"[..],
            b"Application/OpenMetrics-Text"
        ]));
        assert!(!wants_openmetrics([&b"*/*"[..]]));
        assert!(!wants_openmetrics(std::iter::empty()));
    }
}
