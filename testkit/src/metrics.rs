//! Prometheus exposition as the servers and workers serve it on `/metrics`,
//! parsed with `prometheus-parse`, and the figures tests compare.

use prometheus_parse::{Sample, Scrape, Value};

/// Parses exposition text; panics with the text when it is not valid.
pub fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|err| panic!("not valid exposition ({err}):\n{text}"))
}

/// GETs `url` and parses the body; `Err` says why nothing could be read
/// (not listening yet, gone), so a wait can go on.
pub async fn scrape(url: &str) -> Result<Scrape, String> {
    let text = crate::http_client()
        .get(url)
        .send()
        .await
        .map_err(|err| err.to_string())?
        .text()
        .await
        .map_err(|err| err.to_string())?;
    Ok(parse(&text))
}

/// A counter's, gauge's or untyped sample's value; NaN for a histogram or
/// a summary, which have no single value.
pub fn value(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The sum of the samples of metric `name` whose labels include every pair
/// in `labels` (0 when there is none).
pub fn sum(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
        .sum()
}
