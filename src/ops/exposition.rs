//! The Prometheus text exposition format (version 0.0.4), written by `prometheus-client`'s encoder, and the two
//! places where roomguard keeps its own text rather than the crate's: help texts, and one bucket bound.

use prometheus_client::{
    encoding::prometheus_text,
    registry::{Metric, Registry},
};

/// The `Content-Type` of the answer to `GET /metrics`.
pub(super) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Registers `metric` as `name` with `help`. The registry ends every help text with a period of its own; roomguard's
/// help texts are full sentences already, so the period they end with is left to it. A counter's `name` has no
/// `_total`: the encoder adds it.
pub(super) fn register(registry: &mut Registry, name: &str, help: &str, metric: impl Metric) {
    registry.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// `le` values that `prometheus-client` writes as Go's Prometheus client does (`strconv.FormatFloat(v, 'g')`: an
/// exponent below 1e-4), and roomguard as Rust's `Display` wrote them before it used the crate. A bucket's `le` is
/// part of its series' identity (Prometheus before 3.0 does not normalise it in the text format), so roomguard keeps
/// writing its own: the decision latency's first bucket, 50 µs.
const LE_REWRITES: [(&str, &str); 1] = [("le=\"5e-05\"", "le=\"0.00005\"")];

/// Appends every metric of `registry` to `out`.
pub(super) fn encode(out: &mut String, registry: &Registry) {
    let start = out.len();
    // Writing into a String cannot fail; a collector that failed would end the text early, which a scraper reads
    // as fewer samples.
    let _ = prometheus_text::encode(out, registry);
    for (from, to) in LE_REWRITES {
        if out[start..].contains(from) {
            let rewritten = out[start..].replace(from, to);
            out.truncate(start);
            out.push_str(&rewritten);
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::{counter::Counter, family::Family, histogram::Histogram};

    use super::*;

    /// Help texts come out as written, one period at their end; label values are escaped as the format says.
    #[test]
    fn help_texts_keep_their_period_and_label_values_are_escaped() {
        let mut registry = Registry::default();
        let family = Family::<[(&'static str, String); 1], Counter>::default();
        register(&mut registry, "a", "Things counted.", family.clone());
        family.get_or_create(&[("code", "a\"b\\c\nd".into())]).inc();
        let mut out = String::new();
        encode(&mut out, &registry);
        assert_eq!(
            out,
            "# HELP a_total Things counted.\n# TYPE a_total counter\na_total{code=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    /// A bucket bound below 1e-4 keeps the `le` roomguard always gave it.
    #[test]
    fn small_bucket_bounds_keep_their_decimal_le() {
        let mut registry = Registry::default();
        register(
            &mut registry,
            "h",
            "A histogram.",
            Histogram::new([0.000_05, 0.000_1]),
        );
        let mut out = String::new();
        encode(&mut out, &registry);
        assert!(out.contains("h_bucket{le=\"0.00005\"} 0\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.0001\"} 0\n"), "{out}");
        assert!(!out.contains("e-05"), "{out}");
    }
}
