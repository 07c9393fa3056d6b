//! The serving-path load benchmark: roomguard against a no-op server of the same `roomguard.v1` proto, measured side
//! by side in one run.
//!
//! `scripts/loadbench [--rounds 5] [...]` builds the release binaries and runs `loadbench run`, which, for each
//! round, for each placement (unpinned; server pinned to cpu0 and client to cpu1 with `taskset`), each transport (TCP,
//! Unix socket) and each server (the no-op, roomguard with the decision log off, roomguard logging to a file),
//! starts the server as its own process, runs the load client as another process against it, and stops it. The
//! servers take turns within every round, so a change in the machine's load (it is shared) falls on all of them
//! alike. At the end it prints the median of each figure over the rounds and its ratio to the no-op's.
//!
//! Figures: throughput with `connections` x `in_flight` calls outstanding; the server's CPU time per request
//! (user + system, from `/proc/<pid>/stat`, over the same window); and, logging to a file, the share of answered calls
//! that reached the log once it was closed. Then, in each round, placement and transport, the latency of calls made
//! one at a time: the three servers run side by side and `loadbench latency` alternates between them call by call
//! (median and 99th percentile of each one's calls). Latency at one call in flight is mostly wake-ups (the client's,
//! the server's), which vary with the machine's load from one second to the next; alternating calls puts every
//! server under the same conditions, where timing them one after the other let the ratio drift by 0.15 between runs.
//!
//! The other modes are the pieces the driver starts: `loadbench noop` (the no-op server), `loadbench client` and
//! `loadbench latency`.

mod client;
mod http;
mod noop;

use std::{
    collections::BTreeMap,
    io::BufRead as _,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "roomguard against a no-op server of the same proto, interleaved")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run the whole comparison (the servers and clients as processes) and print medians and ratios.
    Run(RunArgs),
    /// Serve the no-op PolicyService (and Envoy's ext_authz, answering OK).
    Noop {
        /// TCP address.
        #[arg(long)]
        listen: String,
        /// Unix socket path.
        #[arg(long)]
        unix: Option<PathBuf>,
        /// Also answer 204 to every HTTP request on this address (the static auth endpoint of the read benchmark).
        #[arg(long)]
        http: Option<String>,
    },
    /// Time HTTP requests made one at a time to several targets, alternating between them; print JSON.
    HttpLatency {
        /// `http://HOST:PORT/path`; repeat for each.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// Requests to each target.
        #[arg(long, default_value_t = 3000)]
        calls: usize,
        /// A header of every request, `Name: value`; repeat for several.
        #[arg(long = "header", value_parser = http::header)]
        headers: Vec<(String, String)>,
    },
    /// Load one HTTP target from kept-alive connections; print answers per second as JSON.
    HttpLoad {
        /// `http://HOST:PORT/path`.
        #[arg(long)]
        target: String,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 500)]
        warmup_ms: u64,
        #[arg(long, default_value_t = 3000)]
        duration_ms: u64,
        /// A header of every request, `Name: value`; repeat for several.
        #[arg(long = "header", value_parser = http::header)]
        headers: Vec<(String, String)>,
    },
    /// Load one server and print its figures as JSON.
    Client(ClientArgs),
    /// Time calls made one at a time to several servers, alternating between them, and print the figures as JSON.
    Latency {
        /// A server: `tcp:HOST:PORT` or `unix:PATH`; repeat for each.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// Calls to each server.
        #[arg(long, default_value_t = 3000)]
        calls: usize,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Rounds; each runs every server in every placement and transport once.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The measured window of each throughput run, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    duration_ms: u64,
    /// Load before the window, in milliseconds.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Calls outstanding per connection.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Calls made one at a time to each server for the latency figures (alternating between the servers).
    #[arg(long, default_value_t = 3000)]
    latency_calls: usize,
    /// Placements: `free` (the scheduler's), `pinned` (server on cpu0, client on cpu1), or both.
    #[arg(long, value_delimiter = ',', default_value = "free,pinned")]
    placements: Vec<String>,
    /// Transports: `tcp`, `unix`, or both.
    #[arg(long, value_delimiter = ',', default_value = "tcp,unix")]
    transports: Vec<String>,
    /// The roomguard binary (default: `../roomguard` beside this example's binary, i.e. the same profile's).
    #[arg(long)]
    roomguard: Option<PathBuf>,
    /// The policy roomguard serves.
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
struct ClientArgs {
    /// The server's TCP address.
    #[arg(long, conflicts_with = "unix")]
    tcp: Option<String>,
    /// The server's Unix socket.
    #[arg(long)]
    unix: Option<PathBuf>,
    /// The server's process id (for its CPU time).
    #[arg(long)]
    server_pid: u32,
    #[arg(long)]
    connections: usize,
    #[arg(long)]
    in_flight: usize,
    #[arg(long)]
    warmup_ms: u64,
    #[arg(long)]
    duration_ms: u64,
    #[arg(long)]
    latency_calls: usize,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Mode::Run(args) => run(&args),
        Mode::Noop { listen, unix, http } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(noop::serve(listen, unix, http)),
        Mode::HttpLatency {
            targets,
            calls,
            headers,
        } => {
            let targets = targets
                .iter()
                .map(|t| http::Target::parse(t))
                .collect::<anyhow::Result<Vec<_>>>()?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(http::latency(targets, calls, headers))
        }
        Mode::HttpLoad {
            target,
            connections,
            warmup_ms,
            duration_ms,
            headers,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(http::load(
                http::Target::parse(&target)?,
                connections,
                Duration::from_millis(warmup_ms),
                Duration::from_millis(duration_ms),
                headers,
            )),
        Mode::Client(args) => {
            let target = match (args.tcp, args.unix) {
                (Some(addr), None) => client::Target::Tcp(addr),
                (None, Some(path)) => client::Target::Unix(path),
                _ => bail!("give --tcp or --unix"),
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(client::run(client::Load {
                    target,
                    server_pid: args.server_pid,
                    connections: args.connections,
                    in_flight: args.in_flight,
                    warmup: Duration::from_millis(args.warmup_ms),
                    duration: Duration::from_millis(args.duration_ms),
                    latency_calls: args.latency_calls,
                }))
        }
        Mode::Latency { targets, calls } => {
            let targets = targets
                .iter()
                .map(|t| match t.split_once(':') {
                    Some(("tcp", addr)) => Ok(client::Target::Tcp(addr.to_owned())),
                    Some(("unix", path)) => Ok(client::Target::Unix(path.into())),
                    _ => bail!("--target {t}: expected tcp:HOST:PORT or unix:PATH"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(client::latency(targets, calls))
        }
    }
}

/// The servers compared, in the order they take turns.
const SERVERS: [&str; 3] = ["noop", "roomguard", "roomguard+log"];

/// One measurement's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    throughput: f64,
    cpu_us_per_request: f64,
    p50_us: f64,
    p99_us: f64,
    /// Lines in the decision log / calls answered (roomguard+log only).
    logged: Option<f64>,
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let roomguard = match &args.roomguard {
        Some(path) => path.clone(),
        None => me
            .parent()
            .and_then(Path::parent)
            .context("no parent directory")?
            .join("roomguard"),
    };
    if !roomguard.exists() {
        bail!(
            "no roomguard binary at {} (build it: cargo build --release --bin roomguard)",
            roomguard.display()
        );
    }
    let policies = std::fs::canonicalize(&args.policies)?;
    eprintln!(
        "loadbench: {} rounds, {} x {} in flight, {} ms windows; roomguard {}",
        args.rounds,
        args.connections,
        args.in_flight,
        args.duration_ms,
        roomguard.display()
    );
    let bench = Bench {
        args,
        me: &me,
        roomguard: &roomguard,
        policies: &policies,
    };
    let mut results: BTreeMap<(String, String, &str), Vec<Figures>> = BTreeMap::new();
    for round in 1..=args.rounds {
        for placement in &args.placements {
            for transport in &args.transports {
                let mut round_figures = Vec::new();
                for server in SERVERS {
                    let figures = measure(&bench, placement, transport, server)?;
                    round_figures.push(figures);
                }
                let latencies = measure_latency(&bench, placement, transport)?;
                if latencies.len() != SERVERS.len() {
                    bail!(
                        "the latency client gave {} figures for {} servers",
                        latencies.len(),
                        SERVERS.len()
                    );
                }
                for ((server, mut figures), (p50, p99)) in
                    SERVERS.into_iter().zip(round_figures).zip(latencies)
                {
                    (figures.p50_us, figures.p99_us) = (p50, p99);
                    eprintln!(
                        "round {round} {placement:>6} {transport:>4} {server:<14} {:>8.0} req/s {:>6.1} us cpu/req p50 {:>5.0} us p99 {:>5.0} us{}",
                        figures.throughput,
                        figures.cpu_us_per_request,
                        figures.p50_us,
                        figures.p99_us,
                        figures
                            .logged
                            .map(|l| format!(" logged {:.4}", l))
                            .unwrap_or_default()
                    );
                    results
                        .entry((placement.clone(), transport.clone(), server))
                        .or_default()
                        .push(figures);
                }
            }
        }
    }
    print_table(args, &results);
    Ok(())
}

/// A server started for one measurement, and where it listens.
struct Started {
    server: Server,
    addr: String,
    socket: PathBuf,
    /// Its decision log (roomguard+log only).
    log: PathBuf,
}

/// Starts `server` (one of [`SERVERS`]) in `dir`, on cpu0 when `pinned`, and waits until it listens.
fn start(bench: &Bench<'_>, pinned: bool, server: &str, dir: &Path) -> anyhow::Result<Started> {
    let Bench {
        me,
        roomguard,
        policies,
        ..
    } = bench;
    let socket = dir.join(format!("{server}.sock"));
    let log = dir.join(format!("{server}.ndjson"));
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = pinned_to(pinned.then_some(0));
    if server == "noop" {
        command
            .arg(me)
            .args(["noop", "--listen", &addr, "--unix"])
            .arg(&socket);
    } else {
        let log_output = if server == "roomguard+log" {
            log.display().to_string()
        } else {
            "off".into()
        };
        command
            .arg(roomguard)
            .args(["serve", "--listen", &addr, "--unix-socket"])
            .arg(&socket)
            .arg("--policies")
            .arg(policies)
            .args(["--decision-log", &log_output])
            .env("RUST_LOG", "warn");
    }
    let stderr = std::fs::File::create(dir.join(format!("{server}.stderr")))?;
    let server = Server(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?,
    );
    wait_until_listening(&addr, &socket)?;
    Ok(Started {
        server,
        addr,
        socket,
        log,
    })
}

/// What every measurement needs: the options, and the binaries and policy it runs.
struct Bench<'a> {
    args: &'a RunArgs,
    /// This program (the no-op server and the clients).
    me: &'a Path,
    roomguard: &'a Path,
    policies: &'a Path,
}

/// Throughput and CPU per request of one server (the latency figures come from [`measure_latency`]).
fn measure(
    bench: &Bench<'_>,
    placement: &str,
    transport: &str,
    server: &str,
) -> anyhow::Result<Figures> {
    let Bench { args, me, .. } = bench;
    let pinned = placement == "pinned";
    let dir = tempfile::tempdir()?;
    let mut started = start(bench, pinned, server, dir.path())?;
    let mut client = pinned_to(pinned.then_some(1));
    client.arg(me).arg("client");
    if transport == "unix" {
        client.arg("--unix").arg(&started.socket);
    } else {
        client.args(["--tcp", &started.addr]);
    }
    let output = client
        .args(["--server-pid", &started.server.0.id().to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(["--in-flight", &args.in_flight.to_string()])
        .args(["--warmup-ms", &args.warmup_ms.to_string()])
        .args(["--duration-ms", &args.duration_ms.to_string()])
        .args(["--latency-calls", "0"])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("the load client failed against {server} ({transport}, {placement})");
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |key: &str| value[key].as_f64().unwrap_or(f64::NAN);
    if number("failed") > 0.0 {
        bail!("{} calls failed against {server}", number("failed"));
    }
    started.server.stop()?;
    let logged = if server == "roomguard+log" {
        let lines = std::io::BufReader::new(std::fs::File::open(&started.log)?)
            .lines()
            .count();
        Some(lines as f64 / number("answered_total"))
    } else {
        None
    };
    Ok(Figures {
        throughput: number("throughput"),
        cpu_us_per_request: number("cpu_us_per_request"),
        logged,
        ..Figures::default()
    })
}

/// The median and 99th percentile latency of each of [`SERVERS`], in that order: all three started side by side, and
/// one client alternating calls between them.
fn measure_latency(
    bench: &Bench<'_>,
    placement: &str,
    transport: &str,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let Bench { args, me, .. } = bench;
    let pinned = placement == "pinned";
    let dir = tempfile::tempdir()?;
    let mut servers = Vec::new();
    for server in SERVERS {
        servers.push(start(bench, pinned, server, dir.path())?);
    }
    let mut client = pinned_to(pinned.then_some(1));
    client.arg(me).arg("latency");
    for started in &servers {
        client.arg("--target").arg(if transport == "unix" {
            format!("unix:{}", started.socket.display())
        } else {
            format!("tcp:{}", started.addr)
        });
    }
    let output = client
        .args(["--calls", &args.latency_calls.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    if !output.status.success() {
        bail!("the latency client failed ({transport}, {placement})");
    }
    for started in &mut servers {
        started.server.stop()?;
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let column = |key: &str| -> Vec<f64> {
        value[key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect())
            .unwrap_or_default()
    };
    Ok(column("p50_us").into_iter().zip(column("p99_us")).collect())
}

/// A command run on `cpu` alone (through `taskset`), or wherever the scheduler likes.
fn pinned_to(cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &cpu.to_string()]);
            command
        }
        None => {
            // `env` with no arguments runs the command as is: both branches take the program as their first argument.
            Command::new("env")
        }
    }
}

fn wait_until_listening(addr: &str, socket: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect(addr).is_ok()
            && std::os::unix::net::UnixStream::connect(socket).is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the server did not listen on {addr} within 20 s")
}

/// A server process, stopped with SIGTERM (so that roomguard closes its decision log), killed if it lingers.
struct Server(Child);

impl Server {
    fn stop(&mut self) -> anyhow::Result<()> {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.0.kill()?;
        bail!("the server did not stop within 10 s of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn print_table(args: &RunArgs, results: &BTreeMap<(String, String, &str), Vec<Figures>>) {
    println!(
        "\nMedians of {} rounds ({} connections x {} in flight; latency one call at a time, alternating between the \
         three servers). Ratios to the no-op.\n",
        args.rounds, args.connections, args.in_flight
    );
    println!(
        "| placement | transport | figure | no-op | roomguard, log off | ratio | roomguard, log to a file | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    type Pick = fn(&Figures) -> f64;
    let figures: [(&str, Pick, usize); 4] = [
        ("throughput (req/s)", |f| f.throughput, 0),
        ("server CPU per request (us)", |f| f.cpu_us_per_request, 1),
        ("p50, 1 in flight (us)", |f| f.p50_us, 0),
        ("p99, 1 in flight (us)", |f| f.p99_us, 0),
    ];
    for placement in &args.placements {
        for transport in &args.transports {
            for (name, pick, decimals) in figures {
                let value = |server: &str| {
                    results
                        .get(&(placement.clone(), transport.clone(), server))
                        .map_or(f64::NAN, |runs| median(runs.iter().map(pick)))
                };
                let (noop, off, log) = (value(SERVERS[0]), value(SERVERS[1]), value(SERVERS[2]));
                println!(
                    "| {placement} | {transport} | {name} | {noop:.decimals$} | {off:.decimals$} | {:.2}x | {log:.decimals$} | {:.2}x |",
                    off / noop,
                    log / noop
                );
            }
        }
    }
    let logged: Vec<f64> = results
        .iter()
        .filter(|((_, _, server), _)| *server == SERVERS[2])
        .flat_map(|(_, runs)| runs.iter().filter_map(|f| f.logged))
        .collect();
    if let Some(worst) = logged.iter().copied().min_by(f64::total_cmp) {
        println!(
            "\nDecision log: the smallest share of answered calls found in the log after shutdown was {worst:.4} \
             (1 = every call logged; the rest were dropped and counted)."
        );
    }
}
