//! Serves `roomguard.v1.PolicyService`, gRPC health and reflection on a listener until `shutdown` resolves, then
//! stops accepting, lets in-flight calls finish, and returns.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;
use tracing::info;

use crate::{
    grpc::PolicyServer,
    proto::{self, policy_service_server::PolicyServiceServer},
    reload,
    store::PolicyStore,
};

/// The largest request accepted: a Matrix event is at most 64 KiB, so anything much larger is not a real request.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// The gRPC service name, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "roomguard.v1.PolicyService";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Building the reflection service failed (a corrupt descriptor set: a build problem).
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves on `listener` with the policy in `store` until `shutdown` completes, reloading the policy when its
/// directory changes or on SIGHUP (see [`reload`]).
///
/// On shutdown the health status turns `NOT_SERVING` first (so load balancers stop sending), then the server stops
/// accepting connections and waits for in-flight calls to finish.
pub async fn run(
    listener: TcpListener,
    store: Arc<PolicyStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<PolicyServiceServer<PolicyServer>>()
        .await;

    // v1 is the standard; v1alpha is still what many clients ask for (grpcurl before 1.9, Python's grpc_reflection
    // descriptor database), so both are served from the same descriptors.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    // The reloader lives as long as the server: it stops when shutdown begins.
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let policy_dir = store.current().dir.clone();
    tokio::spawn(reload::watch(store.clone(), policy_dir, async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
    }));

    let policy = PolicyServiceServer::new(PolicyServer::new(store))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_REQUEST_BYTES);

    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "roomguard listening");
    }
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let draining = async move {
        shutdown.await;
        info!("shutting down: no new calls, finishing calls in flight");
        let _ = stopping_tx.send(true);
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_not_serving::<PolicyServiceServer<PolicyServer>>()
            .await;
    };
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(policy)
        .serve_with_incoming_shutdown(incoming, draining)
        .await?;
    info!("roomguard stopped");
    Ok(())
}
