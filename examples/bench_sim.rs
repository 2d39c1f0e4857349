//! The upstream for `scripts/bench`: credwatch's simulator of ElevenLabs and
//! Twilio, standalone, with many generated credentials, request and
//! connection counters, revocation and fault injection on command.
//!
//! ```text
//! cargo run --release --example bench_sim -- SPEC.json OUT.json
//! ```
//!
//! SPEC.json: `{"admin": "127.0.0.1:19990", "sets": [{"name": "n10", "el": 5, "tw": 5}, …]}`.
//! Optional per set: `"phone": N` imports the first number of Twilio
//! account i into ElevenLabs account i (i < N), assigned to a `ulaw_8000`
//! agent, so credwatch's phone-number cross-check finds it ready;
//! `"tw_keys": N` gives Twilio accounts i < N a Standard API key;
//! `"latency_ms": N` delays every answer of the set by N ms;
//! `"hostile_bytes": N` answers every request of the set with a 200 JSON
//! array of zeros N bytes long, chunked.
//! Every set gets its own pair of fake servers (so its counters are its own)
//! and its own generated keys and accounts. OUT.json is written once every
//! server listens: per set, the base URLs and the secrets (all fake), for the
//! script to write credwatch and blackbox_exporter configs from.
//!
//! The admin port (never one of the fake API ports) answers:
//! - `GET /stats`: per set, requests and connections accepted per upstream,
//!   the most requests in flight at once per upstream since the previous
//!   `/stats?reset=1`, forbidden requests, characters used, and requests per
//!   wall-clock second (the last 20 minutes).
//! - `POST /revoke?set=NAME`: revokes every ElevenLabs key of the set and
//!   rotates every Twilio token; answers the Unix time in milliseconds.
//! - `POST /change?set=NAME&what=WHAT&i=INDEX`: one change that breaks
//!   calls, to one credential of the set (INDEX counts from 0 per
//!   provider); answers the Unix time in milliseconds. WHAT:
//!   `revoke_key` (ElevenLabs key deleted), `remove_permission` (the key
//!   loses `convai_write`, or `&permission=NAME`), `quota_exhausted`
//!   (characters used set to the ceiling), `account_block` (the ElevenLabs
//!   account answers 401 `detected_unusual_activity`), `rotate_token` (the
//!   Twilio Auth Token rotated), `suspend` (the Twilio account suspended),
//!   `release_number` (the Twilio number imported into the ElevenLabs
//!   account of the same index released from the Twilio account).
//! - `POST /faults?sets=A,B&on=1` (or `on=0`): starts (stops) rotating
//!   faults over those sets: every 10 s a new fault on a random tenth of
//!   the credentials (5xx, 429 with `Retry-After`, an HTML gateway page,
//!   malformed JSON, a reset mid-body), a hang on 1 %, and a 3 s world-wide
//!   500 once a minute.
//! - `POST /quit`: exits.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use credwatch_sim::{
    AccountBlock, AccountStatus, Agent, ApiKey, CreditLimitExtension, ElAccount, ElKey,
    ElPhoneNumber, Fault, KeyKind, Simulator, TwilioAccount, World, twilio::sid_from,
};
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Spec {
    admin: String,
    sets: Vec<SetSpec>,
}

#[derive(Deserialize, Clone)]
struct SetSpec {
    name: String,
    el: usize,
    tw: usize,
    #[serde(default)]
    phone: usize,
    #[serde(default)]
    tw_keys: usize,
    /// Every answer of the set after this long (real upstreams: 100–300 ms).
    #[serde(default)]
    latency_ms: u64,
    /// Every answer of the set a 200 JSON array of zeros this long, chunked.
    #[serde(default)]
    hostile_bytes: usize,
}

struct Set {
    spec: SetSpec,
    sim: Simulator,
    el_keys: Vec<String>,
    tw: Vec<(String, String)>,
    /// The ElevenLabs account of each key.
    el_accounts: Vec<String>,
    per_second: Mutex<VecDeque<(u64, u64)>>,
}

impl Set {
    fn total(&self) -> u64 {
        self.sim.upstream_request_count("elevenlabs") + self.sim.upstream_request_count("twilio")
    }
}

fn hex_of(seed: &str, len: usize) -> String {
    let mut out = String::new();
    let mut i = 0u32;
    while out.len() < len {
        out += &hex::encode(Sha256::digest(format!("{seed}/{i}").as_bytes()));
        i += 1;
    }
    out.truncate(len);
    out
}

/// The number of Twilio account `i` that `"phone"` imports into ElevenLabs.
const IMPORTED: &str = "+15550000000";

struct Generated {
    world: World,
    el_keys: Vec<String>,
    el_accounts: Vec<String>,
    tw: Vec<(String, String)>,
    tw_keys: Vec<(String, String)>,
}

fn world(spec: &SetSpec) -> Generated {
    let mut world = World::default();
    world.elevenlabs.latency = Duration::from_millis(spec.latency_ms);
    world.twilio.latency = Duration::from_millis(spec.latency_ms);
    if spec.hostile_bytes > 0 {
        let hostile = Fault::Hostile {
            bytes: spec.hostile_bytes,
        };
        world.elevenlabs.fault = Some(hostile.clone());
        world.twilio.fault = Some(hostile);
    }
    let mut el_keys = Vec::with_capacity(spec.el);
    let mut el_accounts = Vec::with_capacity(spec.el);
    let mut tw = Vec::with_capacity(spec.tw);
    let mut tw_keys = Vec::new();
    for i in 0..spec.tw {
        let seed = format!("{}/tw/{i}", spec.name);
        let sid = sid_from("AC", &seed);
        let token = hex_of(&seed, 32);
        let mut account = TwilioAccount::new(&sid, &token)
            .with_balance(Some("12.34"), "USD")
            .with_generated_numbers(3);
        if i < spec.tw_keys {
            let key_sid = sid_from("SK", &seed);
            let secret = hex_of(&format!("{seed}/key"), 32);
            account = account.with_key(ApiKey::new(&key_sid, &secret, KeyKind::Standard));
            tw_keys.push((key_sid, secret));
        }
        world.twilio.add_account(account);
        tw.push((sid, token));
    }
    for i in 0..spec.el {
        let seed = format!("{}/el/{i}", spec.name);
        let secret = format!("sk_{}", hex_of(&seed, 48));
        let account = format!("acct-{}-{i}", spec.name);
        let mut el_account = ElAccount::new(&account);
        if i < spec.phone && i < tw.len() {
            let agent = Agent::new(
                format!("agent_{}", hex_of(&format!("{seed}/agent"), 28)),
                "bench",
                "ulaw_8000",
            );
            let number = ElPhoneNumber::twilio(
                format!("phnum_{}", hex_of(&format!("{seed}/number"), 26)),
                IMPORTED,
                "bench",
            )
            .assigned_to(&agent)
            .with_twilio_credentials(&tw[i].0, &tw[i].1);
            el_account = el_account.with_agent(agent).with_phone_number(number);
        }
        world.elevenlabs.add_account(el_account);
        world.elevenlabs.add_key(
            secret.clone(),
            ElKey::new(format!("key{}", &hex_of(&seed, 16)), &account),
        );
        el_keys.push(secret);
        el_accounts.push(account);
    }
    Generated {
        world,
        el_keys,
        el_accounts,
        tw,
        tw_keys,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Driver {
    sets: Vec<Set>,
    faults: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Driver {
    fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.spec.name == name)
    }

    fn stats(&self, reset: bool) -> Value {
        let mut sets = serde_json::Map::new();
        for set in &self.sets {
            let up = |u: &str| {
                json!({
                    "requests": set.sim.upstream_request_count(u),
                    "connections": set.sim.connection_count(u),
                    "max_in_flight": if reset { set.sim.take_max_in_flight(u) } else { 0 },
                })
            };
            let world = set.sim.world();
            let characters: u64 = world
                .elevenlabs
                .accounts
                .values()
                .map(|a| a.subscription.character_count)
                .sum();
            let per_second: Vec<(u64, u64)> = set
                .per_second
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect();
            sets.insert(
                set.spec.name.clone(),
                json!({
                    "elevenlabs": up("elevenlabs"),
                    "twilio": up("twilio"),
                    "forbidden": set.sim.forbidden_requests().len(),
                    "non_get": set.sim.forbidden_requests().iter().filter(|r| r.method != "GET").count(),
                    "characters_used": characters,
                    "per_second": per_second,
                }),
            );
        }
        json!({ "now_ms": unix_ms(), "sets": sets })
    }

    /// One change that breaks calls (see the module docs); `None` when the
    /// set, the index or the change is unknown.
    fn change(&self, name: &str, what: &str, i: usize, permission: &str) -> Option<u64> {
        let set = self.set(name)?;
        let key = set.el_keys.get(i);
        let account = set.el_accounts.get(i);
        let sid = set.tw.get(i).map(|(sid, _)| sid);
        let mut done = false;
        set.sim.update(|w| {
            done = match what {
                "revoke_key" => key.and_then(|k| w.elevenlabs.revoke_key(k)).is_some(),
                "remove_permission" => key.and_then(|k| w.elevenlabs.key_mut(k)).is_some_and(|k| {
                    let all = ["user_read", "models_read", "convai_read", "convai_write"];
                    let kept = k
                        .permissions
                        .clone()
                        .unwrap_or_else(|| all.iter().map(|p| p.to_string()).collect());
                    k.permissions = Some(kept.into_iter().filter(|p| p != permission).collect());
                    true
                }),
                "quota_exhausted" => account
                    .and_then(|a| w.elevenlabs.account_mut(a))
                    .is_some_and(|a| {
                        let s = &mut a.subscription;
                        s.character_count =
                            match (s.can_extend_character_limit, s.max_credit_limit_extension) {
                                (true, CreditLimitExtension::Limit(extra)) => {
                                    s.character_limit + extra
                                }
                                (true, CreditLimitExtension::Unlimited) => {
                                    s.can_extend_character_limit = false;
                                    s.character_limit
                                }
                                (false, _) => s.character_limit,
                            };
                        true
                    }),
                "account_block" => account
                    .and_then(|a| w.elevenlabs.account_mut(a))
                    .is_some_and(|a| {
                        a.block = Some(AccountBlock::DetectedUnusualActivity);
                        true
                    }),
                "rotate_token" => sid.is_some_and(|sid| {
                    let token = hex_of(&format!("{sid}/rotated"), 32);
                    w.twilio.rotate_token(sid, token)
                }),
                "suspend" => sid
                    .and_then(|sid| w.twilio.account_mut(sid))
                    .is_some_and(|a| {
                        a.status = AccountStatus::Suspended;
                        true
                    }),
                "release_number" => {
                    sid.and_then(|sid| w.twilio.account_mut(sid))
                        .is_some_and(|a| {
                            let before = a.incoming_numbers.len();
                            a.incoming_numbers.retain(|n| n.phone_number != IMPORTED);
                            a.incoming_numbers.len() != before
                        })
                }
                _ => false,
            };
        });
        done.then(unix_ms)
    }

    fn revoke(&self, name: &str) -> Option<u64> {
        let set = self.set(name)?;
        set.sim.update(|w| {
            for key in &set.el_keys {
                w.elevenlabs.revoke_key(key);
            }
            for (sid, token) in &set.tw {
                w.twilio.rotate_token(sid, hex_of(token, 32));
            }
        });
        Some(unix_ms())
    }
}

/// One fault rotation over `sets`, forever (aborted to stop).
async fn rotate_faults(driver: Arc<Driver>, sets: Vec<String>) {
    let kinds = [
        Fault::ServerError,
        Fault::RateLimited {
            retry_after_secs: Some(30),
        },
        Fault::BadGatewayHtml,
        Fault::MalformedJson,
        Fault::ResetMidBody,
        Fault::SystemBusy,
    ];
    let mut rng = fastrand::Rng::with_seed(7);
    let mut round = 0u64;
    loop {
        let fault = kinds[(round as usize) % kinds.len()].clone();
        let outage = round % 6 == 5;
        for name in &sets {
            let Some(set) = driver.set(name) else {
                continue;
            };
            let picks: Vec<(bool, bool)> = (0..set.el_keys.len().max(set.tw.len()))
                .map(|_| (rng.u32(..10) == 0, rng.u32(..100) == 0))
                .collect();
            set.sim.update(|w| {
                w.elevenlabs.fault = outage.then_some(Fault::ServerError);
                w.twilio.fault = outage.then_some(Fault::ServerError);
                for (i, key) in set.el_keys.iter().enumerate() {
                    if let Some(k) = w.elevenlabs.key_mut(key) {
                        k.fault = match picks[i] {
                            (_, true) => Some(Fault::Hang),
                            (true, _) => Some(fault.clone()),
                            _ => None,
                        };
                    }
                }
                for (i, (sid, _)) in set.tw.iter().enumerate() {
                    if let Some(a) = w.twilio.account_mut(sid) {
                        a.fault = match picks[i] {
                            (_, true) => Some(Fault::Hang),
                            (true, _) => Some(fault.clone()),
                            _ => None,
                        };
                    }
                }
            });
        }
        tokio::time::sleep(if outage {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(10)
        })
        .await;
        if outage {
            for name in &sets {
                if let Some(set) = driver.set(name) {
                    set.sim.update(|w| {
                        w.elevenlabs.fault = None;
                        w.twilio.fault = None;
                    });
                }
            }
        }
        round += 1;
    }
}

fn clear_faults(driver: &Driver) {
    for set in &driver.sets {
        set.sim.update(|w| {
            w.elevenlabs.fault = None;
            w.twilio.fault = None;
            for k in w.elevenlabs.keys.values_mut() {
                k.fault = None;
            }
            for a in w.twilio.accounts.values_mut() {
                a.fault = None;
            }
        });
    }
}

fn query(req: &Request<hyper::body::Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn admin(driver: &Arc<Driver>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let q = query(&req);
    match (req.method().as_str(), req.uri().path()) {
        ("GET", "/stats") => reply(200, driver.stats(q.get("reset").is_some_and(|v| v == "1"))),
        ("POST", "/revoke") => match q.get("set").and_then(|s| driver.revoke(s)) {
            Some(at) => reply(200, json!({ "at_ms": at })),
            None => reply(404, json!({ "error": "no such set" })),
        },
        ("POST", "/change") => {
            let set = q.get("set").map(String::as_str).unwrap_or("");
            let what = q.get("what").map(String::as_str).unwrap_or("");
            let i = q.get("i").and_then(|i| i.parse().ok()).unwrap_or(0);
            let permission = q
                .get("permission")
                .map(String::as_str)
                .unwrap_or("convai_write");
            match driver.change(set, what, i, permission) {
                Some(at) => reply(200, json!({ "at_ms": at })),
                None => reply(404, json!({ "error": "no such set, index or change" })),
            }
        }
        ("POST", "/faults") => {
            let mut slot = driver.faults.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(task) = slot.take() {
                task.abort();
            }
            clear_faults(driver);
            if q.get("on").is_some_and(|v| v == "1") {
                let sets: Vec<String> = q
                    .get("sets")
                    .map(|s| s.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                *slot = Some(tokio::spawn(rotate_faults(driver.clone(), sets)));
            }
            reply(200, json!({ "ok": true }))
        }
        ("POST", "/quit") => std::process::exit(0),
        _ => reply(404, json!({ "error": "not found" })),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: bench_sim SPEC.json OUT.json");
        return std::process::ExitCode::from(2);
    }
    let spec: Spec = match std::fs::read_to_string(&args[1])
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench_sim: {}: {e}", args[1]);
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(spec, args[2].clone()))
}

async fn run(spec: Spec, out: String) -> std::process::ExitCode {
    let mut sets = Vec::new();
    let mut described = serde_json::Map::new();
    for s in &spec.sets {
        let Generated {
            world,
            el_keys,
            el_accounts,
            tw,
            tw_keys,
        } = world(s);
        let sim = match Simulator::start(world).await {
            Ok(sim) => sim,
            Err(e) => {
                eprintln!("bench_sim: cannot start the simulator: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        // A hung request stops counting as in flight before credwatch's
        // 10 s timeout frees its slot: the client closes a timed-out
        // connection from a background task, so the next request can
        // reach the simulator on another connection before the close
        // does, and the simulator would count both (`set_hang_counted_for`).
        sim.set_hang_counted_for(Some(std::time::Duration::from_secs(9)));
        described.insert(
            s.name.clone(),
            json!({
                "elevenlabs_url": sim.elevenlabs_url(),
                "twilio_url": sim.twilio_url(),
                "elevenlabs_keys": el_keys,
                "twilio": tw.iter().map(|(sid, token)| json!({"account_sid": sid, "auth_token": token})).collect::<Vec<_>>(),
                "twilio_keys": tw.iter().zip(&tw_keys).map(|((sid, _), (key, secret))| json!({"account_sid": sid, "api_key_sid": key, "api_key_secret": secret})).collect::<Vec<_>>(),
                "imported_number": IMPORTED,
            }),
        );
        sets.push(Set {
            spec: s.clone(),
            sim,
            el_keys,
            tw,
            el_accounts,
            per_second: Mutex::new(VecDeque::new()),
        });
    }
    let listener = match tokio::net::TcpListener::bind(&spec.admin).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench_sim: cannot listen on {}: {e}", spec.admin);
            return std::process::ExitCode::from(1);
        }
    };
    let driver = Arc::new(Driver {
        sets,
        faults: Mutex::new(None),
    });
    let doc = json!({ "admin": spec.admin, "pid": std::process::id(), "sets": described });
    if let Err(e) = std::fs::write(&out, doc.to_string()) {
        eprintln!("bench_sim: cannot write {out}: {e}");
        return std::process::ExitCode::from(1);
    }
    // Requests per wall-clock second, per set.
    let counter = driver.clone();
    tokio::spawn(async move {
        loop {
            let now = unix_ms();
            tokio::time::sleep(Duration::from_millis(1000 - now % 1000)).await;
            let second = unix_ms() / 1000;
            for set in &counter.sets {
                let mut ring = set.per_second.lock().unwrap_or_else(|p| p.into_inner());
                ring.push_back((second, set.total()));
                if ring.len() > 1200 {
                    ring.pop_front();
                }
            }
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let driver = driver.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let driver = driver.clone();
                async move { Ok::<_, Infallible>(admin(&driver, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
