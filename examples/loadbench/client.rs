//! The load generator: `connections` HTTP/2 connections with `in_flight` calls outstanding on each, a warm-up, then a
//! measured window in which it counts answered calls and reads the server's CPU time from `/proc/<pid>/stat`; then
//! the latency of calls made one at a time on one connection. Prints one JSON object on standard output.
//!
//! [`latency`] times calls made one at a time to several servers running side by side, alternating between them
//! call by call, so that whatever else the machine does falls on every server alike.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use roomguard::grpc::proto::{self, policy_service_client::PolicyServiceClient};
use tonic::transport::{Channel, Endpoint, Uri};

/// Where the server listens.
#[derive(Debug, Clone)]
pub enum Target {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Load {
    /// The server.
    pub target: Target,
    /// Its process id, for its CPU time.
    pub server_pid: u32,
    /// HTTP/2 connections.
    pub connections: usize,
    /// Calls outstanding on each connection.
    pub in_flight: usize,
    /// Load before the measured window (connections warm, allocator and caches settled).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Calls made one at a time for the latency figure.
    pub latency_calls: usize,
}

/// An agent's plain-text message in an encrypted, invite-only room: the shipped policy denies it with one reason
/// (`PLAINTEXT_IN_ENCRYPTED_ROOM`), after reading its body for markings.
pub fn request() -> proto::CheckMessageSendRequest {
    proto::CheckMessageSendRequest {
        request_id: "bench-1".into(),
        sender: Some(proto::Subject {
            user_id: "@alice:agent.finances.tchap.gouv.fr".into(),
            server_admin: false,
            power_level: 0,
        }),
        room: Some(proto::Room {
            room_id: "!kXwBqPzLmTaCdEfGhI:agent.finances.tchap.gouv.fr".into(),
            join_rule: proto::JoinRule::Invite as i32,
            history_visibility: proto::HistoryVisibility::Shared as i32,
            encrypted: true,
            guest_access: false,
            published: false,
            access_rule: String::new(),
        }),
        message: Some(proto::Message {
            event_type: "m.room.message".into(),
            msgtype: "m.text".into(),
            body: "Bonjour à tous, la réunion de demain est décalée à 14 h 30 en salle 4. Merci de confirmer \
                   votre présence avant ce soir, et d'apporter le compte rendu de la semaine dernière."
                .into(),
            ..Default::default()
        }),
    }
}

async fn connect(target: &Target) -> anyhow::Result<Channel> {
    match target {
        Target::Tcp(addr) => Ok(Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?),
        Target::Unix(path) => {
            let path = path.clone();
            Ok(Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(path).await?,
                        ))
                    }
                }))
                .await?)
        }
    }
}

/// The server's user + system CPU time, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    let after = stat.rsplit_once(')').context("no `)` in stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Runs `load` and prints its figures as one JSON object.
pub async fn run(load: Load) -> anyhow::Result<()> {
    let request = request();
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..load.connections {
        let channel = connect(&load.target).await?;
        for _ in 0..load.in_flight {
            let mut client = PolicyServiceClient::new(channel.clone());
            let (answered, failed, stop, request) = (
                answered.clone(),
                failed.clone(),
                stop.clone(),
                request.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.check_message_send(request.clone()).await {
                        Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    tokio::time::sleep(load.warmup).await;
    let (count0, cpu0, t0) = (
        answered.load(Ordering::Relaxed),
        cpu_ticks(load.server_pid)?,
        Instant::now(),
    );
    tokio::time::sleep(load.duration).await;
    let (count1, cpu1, t1) = (
        answered.load(Ordering::Relaxed),
        cpu_ticks(load.server_pid)?,
        Instant::now(),
    );
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let requests = count1 - count0;
    let seconds = (t1 - t0).as_secs_f64();
    let cpu_us = (cpu1 - cpu0) as f64 * 1e6 / clock_ticks_per_second() as f64;

    // Latency: one call at a time, so the figure is the round trip and the server's work, not queueing.
    let mut client = PolicyServiceClient::new(connect(&load.target).await?);
    for _ in 0..100 {
        client.check_message_send(request.clone()).await?;
    }
    let mut latencies = Vec::with_capacity(load.latency_calls);
    for _ in 0..load.latency_calls {
        let started = Instant::now();
        client.check_message_send(request.clone()).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let percentile = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    let answered_total = answered.load(Ordering::Relaxed) + 100 + load.latency_calls as u64;
    println!(
        "{}",
        serde_json::json!({
            "throughput": requests as f64 / seconds,
            "cpu_us_per_request": cpu_us / requests.max(1) as f64,
            "p50_us": percentile(0.5),
            "p99_us": percentile(0.99),
            "failed": failed.load(Ordering::Relaxed),
            "answered_total": answered_total,
        })
    );
    Ok(())
}

/// Calls made one at a time, `calls` to each of `targets` (all running at once), alternating between them call by
/// call; the order within each turn rotates, so no server always follows the same one. Prints the median and 99th
/// percentile of each target's calls, in microseconds, as `{"p50_us": [...], "p99_us": [...]}` in `targets` order.
pub async fn latency(targets: Vec<Target>, calls: usize) -> anyhow::Result<()> {
    let request = request();
    let mut clients = Vec::new();
    for target in &targets {
        let mut client = PolicyServiceClient::new(connect(target).await?);
        for _ in 0..100 {
            client.check_message_send(request.clone()).await?;
        }
        clients.push(client);
    }
    let servers = clients.len();
    let mut latencies = vec![Vec::with_capacity(calls); servers];
    for turn in 0..calls {
        for k in 0..servers {
            let at = (turn + k) % servers;
            let (Some(client), Some(times)) = (clients.get_mut(at), latencies.get_mut(at)) else {
                continue;
            };
            let started = Instant::now();
            client.check_message_send(request.clone()).await?;
            times.push(started.elapsed());
        }
    }
    let percentile = |times: &mut Vec<Duration>, p: f64| {
        times.sort();
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    let p50: Vec<f64> = latencies.iter_mut().map(|t| percentile(t, 0.5)).collect();
    let p99: Vec<f64> = latencies.iter_mut().map(|t| percentile(t, 0.99)).collect();
    println!("{}", serde_json::json!({ "p50_us": p50, "p99_us": p99 }));
    Ok(())
}
