//! The operator's endpoints: `GET /ready` (the engine's readiness as JSON)
//! and, with the `prometheus` feature (on by default), `GET /metrics` (the
//! engine's metrics in Prometheus' text format, docs/metrics.md).

use actix_web::{http::header, web, HttpResponse};
use stratasync_core::SyncEngine;

/// `GET /ready`: 200 with `{"status":"ready",…}` when the database, the
/// Redis fan-out (if any) and the live feed are up, else 503 with
/// `{"status":"not_ready",…}` ([`SyncEngine::readiness`]).
pub async fn ready(engine: SyncEngine) -> HttpResponse {
    let report = engine.readiness().await;
    let mut response = if report.is_ready() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    response.insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8")).body(report.to_json())
}

/// The Prometheus recorder, installed for the whole process.
#[cfg(feature = "prometheus")]
pub type Metrics = metrics_exporter_prometheus::PrometheusHandle;

/// Without the `prometheus` feature there is no recorder.
#[cfg(not(feature = "prometheus"))]
pub type Metrics = ();

/// How often the recorder's histograms are folded into their summaries.
#[cfg(feature = "prometheus")]
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder (once per process: a
/// second call fails) and describes the engine's series. Inside the tokio
/// runtime.
#[cfg(feature = "prometheus")]
pub fn install() -> Result<Option<Metrics>, crate::server::BoxError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    use stratasync_core::metrics as series;
    // Histograms as buckets (aggregatable across nodes), not summaries.
    let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(series::COMMIT_DURATION.to_owned()), &seconds)?
        .set_buckets_for_metric(Matcher::Full(series::COMMIT_GROUP_TRANSACTIONS.to_owned()), &sizes)?
        .set_buckets_for_metric(Matcher::Full(series::COMMIT_GROUP_REQUESTS.to_owned()), &sizes)?
        .install_recorder()?;
    stratasync_core::metrics::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_EVERY);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(Some(handle))
}

/// Without the `prometheus` feature: nothing to install.
#[cfg(not(feature = "prometheus"))]
pub fn install() -> Result<Option<Metrics>, crate::server::BoxError> {
    Ok(None)
}

/// Mounts `GET /metrics` when a recorder is installed.
pub fn metrics_route(metrics: Option<Metrics>) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        #[cfg(feature = "prometheus")]
        if let Some(handle) = metrics.clone() {
            cfg.route("/metrics", web::get().to(move || render(handle.clone())));
        }
        #[cfg(not(feature = "prometheus"))]
        let _ = (&metrics, cfg);
    }
}

/// `GET /metrics`: every series in Prometheus' text format.
#[cfg(feature = "prometheus")]
async fn render(handle: Metrics) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(handle.render())
}
