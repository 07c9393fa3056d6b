//! The config's specification: the example file, each layer, each section's checks, and every error naming its
//! setting.

use std::time::Duration;

use clap::{Args as _, Command, FromArgMatches as _};

use super::{
    Config,
    settings::{Given, Layers, Origin, SETTINGS, ServeArgs},
};
use crate::documents::OcrLimits;
use crate::ops::{
    config_error::ConfigError,
    counters::config::{CounterBackend, CounterFallback},
    limits::LimitsConfig,
    media_limits::OcrMode,
    mode::Mode,
    reads::config::{ReadFailureMode, ReadsConfig},
};

/// `file` under the given values, as `Config::load` layers them (without validating).
fn load_over(file: &str, given: &[(&str, &str)]) -> Config {
    let mut layers = Layers::file(file, None).unwrap();
    for (key, value) in given {
        layers
            .set(&Given {
                key: (*key).to_owned(),
                value: (*value).to_owned(),
                origin: Origin::Set,
            })
            .unwrap();
    }
    layers.deserialize().unwrap()
}

/// The example file in the repository parses, and holds every default (so it documents them truthfully).
#[test]
fn the_example_file_parses_to_the_defaults() {
    let text = std::fs::read_to_string("roomguard.example.toml").unwrap();
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config, Config::default());
}

/// A wrong type is reported with the dotted setting name.
#[test]
fn a_wrong_type_names_the_setting() {
    let err = Config::from_toml("[limits]\nrequest_timeout_ms = \"soon\"\n").unwrap_err();
    assert_eq!(err.setting, "limits.request_timeout_ms", "{err}");
}

/// An unknown key is refused, naming it.
#[test]
fn an_unknown_key_is_refused() {
    let err = Config::from_toml("[tls]\ncertificate = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(err.setting, "tls.certificate");
}

/// A bad mode names `mode`.
#[test]
fn a_bad_mode_names_the_setting() {
    let err = Config::from_toml("mode = \"dry-run\"\n").unwrap_err();
    assert_eq!(err.setting, "mode", "{err}");
}

/// A flag or variable overrides the file; an unset one leaves it.
#[test]
fn overrides_win_over_the_file() {
    let config = load_over(
        "mode = \"shadow\"\n[limits]\nrequest_timeout_ms = 50\n",
        &[("limits.request_timeout_ms", "75")],
    );
    assert_eq!(config.limits.request_timeout_ms, 75);
    assert_eq!(config.mode, Mode::Shadow);
}

/// The connection and shutdown limits come from `[limits]`, and their flags or variables override the file; a
/// zero handshake timeout or connection cap is refused (it would refuse every client), a zero grace is allowed
/// (close at once).
#[test]
fn connection_and_shutdown_limits_are_settings() {
    let config = Config::from_toml(
        "[limits]\nhandshake_timeout_ms = 2000\nmax_connections = 50\nshutdown_grace_ms = 100\n",
    )
    .unwrap();
    assert_eq!(
        (
            config.limits.handshake_timeout_ms,
            config.limits.max_connections,
            config.limits.shutdown_grace_ms
        ),
        (2000, 50, 100)
    );
    let mut config = load_over(
        "[limits]\nhandshake_timeout_ms = 2000\nmax_connections = 50\nshutdown_grace_ms = 100\n",
        &[
            ("limits.max_connections", "70"),
            ("limits.shutdown_grace_ms", "0"),
        ],
    );
    assert_eq!(config.limits.max_connections, 70);
    assert!(config.validate().is_ok(), "a zero grace closes at once");
    for (setting, limits) in [
        (
            "limits.handshake_timeout_ms",
            LimitsConfig {
                handshake_timeout_ms: 0,
                ..LimitsConfig::default()
            },
        ),
        (
            "limits.max_connections",
            LimitsConfig {
                max_connections: 0,
                ..LimitsConfig::default()
            },
        ),
    ] {
        config.limits = limits;
        assert_eq!(config.validate().unwrap_err().setting, setting);
    }
}

/// Half a TLS set-up is refused, naming the missing half.
#[test]
fn a_cert_without_a_key_names_tls_key() {
    let mut config = Config::default();
    config.tls.cert = Some("Cargo.toml".into());
    assert_eq!(config.validate().unwrap_err().setting, "tls.key");
}

/// Zero limits are refused, naming the setting.
#[test]
fn a_zero_limit_is_refused() {
    let mut config = Config::default();
    config.limits.max_concurrent_requests = 0;
    assert_eq!(
        config.validate().unwrap_err().setting,
        "limits.max_concurrent_requests"
    );
}

/// The media limits come from `[media]`, their flags or variables override the file, and a zero limit is refused
/// naming the setting (a zero nesting is allowed: embedded files are then not opened).
#[test]
fn media_limits_are_settings() {
    let config =
        Config::from_toml("[media]\nmax_bytes = 1000\ntimeout_ms = 200\nmax_nesting = 0\n")
            .unwrap();
    assert_eq!(
        (
            config.media.max_bytes,
            config.media.timeout_ms,
            config.media.max_nesting
        ),
        (1000, 200, 0)
    );
    assert!(config.validate().is_ok());
    let mut config = load_over(
        "[media]\nmax_bytes = 1000\ntimeout_ms = 200\nmax_nesting = 0\n",
        &[
            ("media.max_concurrent_scans", "9"),
            ("media.max_text_chars", "77"),
        ],
    );
    assert_eq!(config.media.max_concurrent_scans, 9);
    assert_eq!(config.media.max_text_chars, 77);
    config.media.max_uncompressed_bytes = 0;
    assert_eq!(
        config.validate().unwrap_err().setting,
        "media.max_uncompressed_bytes"
    );
    let err = Config::from_toml("[media]\nmax_size = 1\n").unwrap_err();
    assert_eq!(err.setting, "media.max_size", "{err}");
}

/// OCR is on by default; `[media]` sets its mode and limits, flags or variables override them, and the scans
/// get them as their OCR limits; a zero OCR limit is refused naming it (`ocr = "off"` is how OCR is turned off).
#[test]
fn ocr_settings() {
    let config = Config::default();
    assert_eq!(config.media.ocr, OcrMode::On);
    assert_eq!(config.media.ocr_limits(), OcrLimits::default());
    let config = Config::from_toml(
        "[media]\nocr = \"off\"\nocr_max_pages = 3\nocr_timeout_ms = 700\nocr_max_pixels = 1000000\n",
    )
    .unwrap();
    assert_eq!(
        config.media.ocr_limits(),
        OcrLimits {
            enabled: false,
            max_pages: 3,
            timeout: Duration::from_millis(700),
            max_pixels: 1_000_000,
        }
    );
    let config = load_over(
        "[media]\nocr = \"off\"\n",
        &[("media.ocr", "required"), ("media.ocr_max_pages", "5")],
    );
    assert_eq!(
        (config.media.ocr, config.media.ocr_max_pages),
        (OcrMode::Required, 5)
    );
    assert!(config.media.ocr_limits().enabled);
    for setting in ["ocr_max_pages", "ocr_timeout_ms", "ocr_max_pixels"] {
        let config = Config::from_toml(&format!("[media]\n{setting} = 0\n")).unwrap();
        assert_eq!(
            config.validate().unwrap_err().setting,
            format!("media.{setting}")
        );
    }
    let err = Config::from_toml("[media]\nocr = \"auto\"\n").unwrap_err();
    assert_eq!(err.setting, "media.ocr", "{err}");
}

/// A missing token file is refused at start-up, not at the first call.
#[test]
fn an_unreadable_token_file_is_refused() {
    let mut config = Config::default();
    config.auth.token_file = Some("/nonexistent/token".into());
    assert_eq!(config.validate().unwrap_err().setting, "auth.token_file");
}

/// The shared counter's settings come from `[counters]`, their flags or variables override the file, and the
/// variables carry exactly the names operators set (`ROOMGUARD_COUNTERS_*`).
#[test]
fn counter_backend_settings() {
    let config = Config::from_toml(
        "[counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\nredis_timeout_ms = 20\n\
         fallback = \"zero\"\n",
    )
    .unwrap();
    assert_eq!(config.counters.backend, CounterBackend::Redis);
    assert_eq!(config.counters.fallback, CounterFallback::Zero);
    assert_eq!(config.counters.redis_timeout_ms, 20);
    assert!(config.validate().is_ok());
    let config = load_over(
        "[counters]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\nfallback = \"zero\"\n",
        &[
            ("counters.fallback", "local"),
            ("counters.redis_timeout_ms", "75"),
            ("counters.redis_url", "rediss://redis.internal:6380/1"),
        ],
    );
    assert_eq!(config.counters.fallback, CounterFallback::Local);
    assert_eq!(config.counters.redis_timeout_ms, 75);
    assert_eq!(
        config.counters.redis_url.as_deref(),
        Some("rediss://redis.internal:6380/1")
    );
    let variables: Vec<&str> = SETTINGS.iter().map(|s| s.env).collect();
    for variable in [
        "ROOMGUARD_COUNTERS_BACKEND",
        "ROOMGUARD_COUNTERS_REDIS_URL",
        "ROOMGUARD_COUNTERS_REDIS_PASSWORD_FILE",
        "ROOMGUARD_COUNTERS_REDIS_TIMEOUT_MS",
        "ROOMGUARD_COUNTERS_FALLBACK",
    ] {
        assert!(variables.contains(&variable), "{variable}");
    }
}

/// A Redis backend needs a Redis URL; a URL without the Redis backend, a URL that is not Redis's, a password in
/// two places or a zero timeout are refused, each naming the setting.
#[test]
fn inconsistent_counter_settings_are_refused() {
    let redis = |url: Option<&str>| {
        let mut config = Config::default();
        config.counters.backend = CounterBackend::Redis;
        config.counters.redis_url = url.map(str::to_owned);
        config
    };
    assert_eq!(
        redis(None).validate().unwrap_err().setting,
        "counters.redis_url"
    );
    let err = redis(Some("http://127.0.0.1:6379")).validate().unwrap_err();
    assert_eq!(err.setting, "counters.redis_url");
    assert!(err.problem.contains("redis://"), "{err}");
    let mut config = Config::default();
    config.counters.redis_url = Some("redis://127.0.0.1:6379".into());
    let err = config.validate().unwrap_err();
    assert_eq!(err.setting, "counters.redis_url");
    assert!(err.problem.contains("memory"), "{err}");
    let mut config = redis(Some("redis://:s3cret@127.0.0.1:6379"));
    config.counters.redis_password_file = Some("Cargo.toml".into());
    assert_eq!(
        config.validate().unwrap_err().setting,
        "counters.redis_password_file"
    );
    let mut config = redis(Some("redis://127.0.0.1:6379"));
    config.counters.redis_password_file = Some("/nonexistent/password".into());
    assert_eq!(
        config.validate().unwrap_err().setting,
        "counters.redis_password_file"
    );
    let mut config = redis(Some("redis://127.0.0.1:6379"));
    config.counters.redis_timeout_ms = 0;
    assert_eq!(
        config.validate().unwrap_err().setting,
        "counters.redis_timeout_ms"
    );
    let err = Config::from_toml("[counters]\nbackend = \"etcd\"\n").unwrap_err();
    assert_eq!(err.setting, "counters.backend", "{err}");
}

/// The read guard's settings come from `[reads]`, their flags or variables override the file, and inconsistent
/// ones are refused naming the setting.
#[test]
fn read_guard_settings() {
    let config = Config::from_toml(
        "[reads]\nhttp_listen = \"127.0.0.1:50052\"\nhomeserver_url = \"http://127.0.0.1:8008\"\n\
         failure_mode = \"closed\"\ntoken_cache_s = 30\n",
    )
    .unwrap();
    assert_eq!(config.reads.failure_mode, ReadFailureMode::Closed);
    assert_eq!(config.reads.token_cache_s, 30);
    assert!(config.validate().is_ok());
    let config = load_over(
        "[reads]\nhttp_listen = \"127.0.0.1:50052\"\nhomeserver_url = \"http://127.0.0.1:8008\"\n\
         failure_mode = \"closed\"\n",
        &[("reads.failure_mode", "open"), ("reads.room_cache_s", "5")],
    );
    assert_eq!(config.reads.failure_mode, ReadFailureMode::Open);
    assert_eq!(config.reads.room_cache_s, 5);
    let refused = |change: &dyn Fn(&mut ReadsConfig)| {
        let mut config = Config::default();
        config.reads.homeserver_url = Some("http://127.0.0.1:8008".into());
        change(&mut config.reads);
        config.validate().unwrap_err().setting
    };
    assert_eq!(
        refused(&|r| {
            r.homeserver_url = None;
            r.http_listen = Some("127.0.0.1:50052".parse().unwrap());
        }),
        "reads.homeserver_url"
    );
    assert_eq!(
        refused(&|r| r.http_listen = Some("127.0.0.1:50051".parse().unwrap())),
        "reads.http_listen"
    );
    assert_eq!(
        refused(&|r| r.homeserver_url = Some("ftp://x".into())),
        "reads.homeserver_url"
    );
    assert_eq!(
        refused(&|r| r.homeserver_url = Some("http://h:8008/?a=1".into())),
        "reads.homeserver_url"
    );
    assert_eq!(
        refused(&|r| r.lock_account_after = 3),
        "reads.lock_account_after"
    );
    assert_eq!(
        refused(&|r| r.admin_token_file = Some("/nonexistent/token".into())),
        "reads.admin_token_file"
    );
    assert_eq!(
        refused(&|r| r.token_cache_entries = 0),
        "reads.token_cache_entries"
    );
    let err = Config::from_toml("[reads]\nfailure_mode = \"maybe\"\n").unwrap_err();
    assert_eq!(err.setting, "reads.failure_mode", "{err}");
}

/// Every `# --flag, VARIABLE` line of the example file, with the setting just below it and its value there.
fn example_settings() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string("roomguard.example.toml").unwrap();
    let mut found = Vec::new();
    let mut section = String::new();
    let mut pending: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        }
        if let Some((flag, env)) = line
            .strip_prefix("# --")
            .and_then(|rest| rest.split_once(", "))
        {
            pending = Some((flag.to_owned(), env.to_owned()));
            continue;
        }
        if let Some((flag, env)) = pending.take() {
            let setting = line.trim_start_matches("# ");
            let (key, value) = setting
                .split_once(" = ")
                .unwrap_or_else(|| panic!("`--{flag}` is not just above a setting: {line}"));
            let key = if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            };
            found.push((key, flag, env, value.to_owned()));
        }
    }
    found
}

/// `serve`'s arguments as clap parses them from `argv`.
fn parse(argv: &[&str]) -> Result<ServeArgs, clap::Error> {
    let matches = ServeArgs::augment_args(Command::new("serve")).try_get_matches_from(argv)?;
    ServeArgs::from_arg_matches(&matches)
}

fn load(args: &ServeArgs, file: &str) -> Result<Config, ConfigError> {
    let mut layers = Layers::file(file, None)?;
    for given in &args.given {
        layers.set(given)?;
    }
    layers.deserialize()
}

/// The example file shows every setting of the table with its flag and variable (and nothing else), and each
/// flag, each variable and `--set` load the value shown to the same settings as the file does.
#[test]
fn every_documented_flag_and_variable_loads_the_setting_of_the_example_file() {
    let documented = example_settings();
    let mut keys: Vec<&str> = documented.iter().map(|(key, ..)| key.as_str()).collect();
    keys.sort_unstable();
    let mut table: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    table.sort_unstable();
    assert_eq!(
        keys, table,
        "the example file and the table list the same settings"
    );
    for (key, flag, env, value) in &documented {
        let setting = SETTINGS.iter().find(|s| s.key == key).unwrap();
        assert_eq!(
            (flag.as_str(), env.as_str()),
            (setting.flag, setting.env),
            "{key}"
        );
        let (section, name) = key.rsplit_once('.').unwrap_or(("", key));
        let file = if section.is_empty() {
            format!("{name} = {value}\n")
        } else {
            format!("[{section}]\n{name} = {value}\n")
        };
        let from_file = Config::from_toml(&file).unwrap_or_else(|e| panic!("{key}: {e}"));
        let text = value.trim_matches('"');
        let from_flag = load(&parse(&["serve", &format!("--{flag}"), text]).unwrap(), "")
            .unwrap_or_else(|e| panic!("--{flag}: {e}"));
        assert_eq!(from_flag, from_file, "--{flag} {text}");
        let from_set = load(
            &parse(&["serve", "--set", &format!("{key}={text}")]).unwrap(),
            "",
        )
        .unwrap_or_else(|e| panic!("--set {key}: {e}"));
        assert_eq!(from_set, from_file, "--set {key}={text}");
        let from_env = load(
            &ServeArgs {
                config: None,
                given: vec![Given {
                    key: key.clone(),
                    value: text.to_owned(),
                    origin: Origin::Env(setting.env),
                }],
            },
            "",
        )
        .unwrap_or_else(|e| panic!("{env}: {e}"));
        assert_eq!(from_env, from_file, "{env}={text}");
    }
    let argv = ServeArgs::augment_args(Command::new("serve"));
    for setting in SETTINGS {
        let arg = argv
            .get_arguments()
            .find(|a| a.get_long() == Some(setting.flag))
            .unwrap_or_else(|| panic!("no --{}", setting.flag));
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(setting.env));
    }
}

/// A flag wins over the file, `--set` over a flag, and the later of two `--set` wins.
#[test]
fn layers_stack_in_order() {
    let args = parse(&[
        "serve",
        "--max-connections",
        "70",
        "--set",
        "media.timeout_ms=300",
        "--set",
        "media.timeout_ms=350",
    ])
    .unwrap();
    let config = load(
        &args,
        "[limits]\nmax_connections = 50\n[media]\ntimeout_ms = 200\n",
    )
    .unwrap();
    assert_eq!(config.limits.max_connections, 70);
    assert_eq!(config.media.timeout_ms, 350);
    let args = parse(&[
        "serve",
        "--max-connections",
        "70",
        "--set",
        "limits.max_connections=80",
    ])
    .unwrap();
    assert_eq!(load(&args, "").unwrap().limits.max_connections, 80);
}

/// A bad value names the setting and where it came from; an unknown `--set` key is refused by name, whatever
/// its depth; a secret value is never repeated.
#[test]
fn errors_name_the_setting_and_its_origin() {
    let err = load(&parse(&["serve", "--max-connections", "many"]).unwrap(), "").unwrap_err();
    assert_eq!(err.setting, "limits.max_connections");
    assert!(err.problem.contains("--max-connections"), "{err}");
    let err = load(&parse(&["serve", "--mode", "dry-run"]).unwrap(), "").unwrap_err();
    assert_eq!(err.setting, "mode");
    assert!(err.problem.contains("from --mode"), "{err}");
    for key in ["limits.max_conections", "lissten", "media.ocr.pages"] {
        let err = load(
            &parse(&["serve", "--set", &format!("{key}=1")]).unwrap(),
            "",
        )
        .unwrap_err();
        let named = if key == "media.ocr.pages" {
            "media.ocr"
        } else {
            key
        };
        assert_eq!(err.setting, named, "{err}");
    }
    let replaced = load(
        &ServeArgs::default().with("tls.cert", "x"),
        "[tls]\ncert = 1\n",
    );
    assert!(
        replaced.is_ok(),
        "a later layer replaces the file's wrong value"
    );
    let err = Layers::file(
        "[limits]\nmax_connections = 50\nmode = \"x\"\n",
        Some("/etc/rg.toml".into()),
    )
    .unwrap()
    .deserialize::<Config>()
    .unwrap_err();
    assert_eq!(err.setting, "limits.mode");
    assert!(err.problem.contains("in `/etc/rg.toml`"), "{err}");
    let err = Layers::file("[limits\n", Some("/etc/rg.toml".into())).unwrap_err();
    assert!(err.problem.contains("line 1"), "{err}");
    let secret = Given {
        key: "counters.redis_url".into(),
        value: "redis://:hunter2@h".into(),
        origin: Origin::Env("ROOMGUARD_COUNTERS_REDIS_URL"),
    };
    let mut layers = Layers::default();
    layers.set(&secret).unwrap();
    let err = layers
        .set(&Given {
            key: "counters.redis_url.x".into(),
            value: "1".into(),
            origin: Origin::Set,
        })
        .unwrap_err();
    assert_eq!(err.setting, "counters.redis_url");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let args = parse(&["serve", "--set", "no-equals-sign"]);
    assert!(args.is_err());
}

/// The operators' page lists every setting with its flag and variable, and names no flag or variable that `serve`
/// does not have (the table is written by hand: this keeps it from drifting).
#[test]
fn the_operating_page_lists_every_setting() {
    let page = std::fs::read_to_string("docs/operating.md").unwrap();
    let start = page.find("## Configuration").unwrap();
    let end = start + page[start..].find("\n## ").unwrap();
    let section = &page[start..end];
    for setting in SETTINGS {
        for shown in [
            setting.key.to_owned(),
            format!("--{}", setting.flag),
            setting.env.to_owned(),
        ] {
            assert!(
                section.contains(&shown),
                "docs/operating.md, Configuration: `{shown}` is missing"
            );
        }
    }
    let known = |word: &str| {
        SETTINGS
            .iter()
            .any(|s| word == format!("--{}", s.flag) || word == s.env)
            || [
                "--config",
                "--set",
                "ROOMGUARD_CONFIG",
                "ROOMGUARD_AUTH_TOKEN",
            ]
            .contains(&word)
    };
    for word in section.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        let named = (word.starts_with("--")
            && word[2..].starts_with(|c: char| c.is_ascii_lowercase()))
            || (word.starts_with("ROOMGUARD_") && word.len() > 10);
        assert!(
            !named || known(word),
            "docs/operating.md, Configuration: `{word}` is no setting of `serve`"
        );
    }
}
