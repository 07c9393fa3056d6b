//! HTTP/1.1 load for the read guard's benchmark (`scripts/bench-reads.py`): requests through a proxy (nginx, Envoy)
//! or straight to an auth endpoint, on kept-alive connections, as a proxy's clients and a proxy itself send them.
//!
//! - `http-latency`: one request at a time to each target in turn (the order rotating every round), so that the
//!   machine's drift falls on every target alike; the median and 99th percentile of each target's requests.
//! - `http-load`: `connections` connections to one target, each sending its next request as soon as the previous
//!   answer arrives, for a measured window after a warm-up; answers per second.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Empty};
use hyper::{
    Request,
    body::Bytes,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One target: `http://HOST:PORT/path?query`.
#[derive(Debug, Clone)]
pub struct Target {
    url: String,
    addr: String,
    path: String,
}

impl Target {
    /// Parses `http://HOST:PORT/path`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .context("only http:// targets")?;
        let (addr, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        Ok(Target {
            url: url.to_owned(),
            addr: addr.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// A kept-alive connection to a target.
struct Connection {
    sender: SendRequest<Empty<Bytes>>,
    target: Target,
    headers: Vec<(String, String)>,
}

impl Connection {
    async fn open(target: &Target, headers: &[(String, String)]) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(&target.addr)
            .await
            .with_context(|| format!("connect {}", target.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            target: target.clone(),
            headers: headers.to_vec(),
        })
    }

    /// One request; its status (the body is read whole and dropped). A connection the server closed (nginx closes a
    /// client's after `keepalive_requests`, 1,000 by default) is opened again first.
    async fn request(&mut self) -> anyhow::Result<u16> {
        if self.sender.ready().await.is_err() || self.sender.is_closed() {
            *self = Connection::open(&self.target, &self.headers).await?;
            self.sender.ready().await?;
        }
        let mut request = Request::get(&self.target.path).header("host", &self.target.addr);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = self
            .sender
            .send_request(request.body(Empty::new())?)
            .await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Times `calls` requests to each target, one at a time, alternating between the targets; prints JSON.
pub async fn latency(
    targets: Vec<Target>,
    calls: usize,
    headers: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let mut connections = Vec::new();
    for target in &targets {
        connections.push(Connection::open(target, &headers).await?);
    }
    // A few requests each first: caches, connections to the upstreams, the token cache.
    for connection in &mut connections {
        for _ in 0..50 {
            connection.request().await?;
        }
    }
    let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(calls); targets.len()];
    let mut statuses: Vec<BTreeMap<u16, usize>> = vec![BTreeMap::new(); targets.len()];
    for round in 0..calls {
        for k in 0..targets.len() {
            let i = (round + k) % targets.len();
            let started = Instant::now();
            let status = connections[i].request().await?;
            times[i].push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
            *statuses[i].entry(status).or_default() += 1;
        }
    }
    let mut out = serde_json::Map::new();
    for ((target, mut t), s) in targets.iter().zip(times).zip(statuses) {
        t.sort_unstable();
        out.insert(
            target.url.clone(),
            serde_json::json!({
                "p50_us": percentile(&t, 50.0),
                "p99_us": percentile(&t, 99.0),
                "calls": t.len(),
                "statuses": s.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}

/// Loads one target with `connections` connections for `duration` after `warmup`; prints JSON.
pub async fn load(
    target: Target,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    headers: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let window = (start + warmup, start + warmup + duration);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let mut connection = Connection::open(&target, &headers).await?;
        tasks.spawn(async move {
            let mut answered = 0u64;
            let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
            loop {
                let status = connection.request().await?;
                let now = Instant::now();
                if now >= window.1 {
                    return anyhow::Ok((answered, statuses));
                }
                if now >= window.0 {
                    answered += 1;
                    *statuses.entry(status).or_default() += 1;
                }
            }
        });
    }
    let mut answered = 0;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        let (n, s) = result??;
        answered += n;
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
    }
    if answered == 0 {
        bail!("no answer in the window");
    }
    println!(
        "{}",
        serde_json::json!({
            "throughput": answered as f64 / duration.as_secs_f64(),
            "statuses": statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        })
    );
    Ok(())
}

/// `Name: value` -> the pair.
pub fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: expected `Name: value`"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}
