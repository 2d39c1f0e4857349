//! Prometheus' HTTP API, polling, and the processes the test starts.

use super::*;

// --- Prometheus' HTTP API ----------------------------------------------------------

pub(crate) struct Prom {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
}

/// One sample of an instant-query result.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

impl Row {
    pub(crate) fn label(&self, name: &str) -> String {
        self.labels.get(name).cloned().unwrap_or_default()
    }
}

impl Prom {
    /// `data` of a successful API answer.
    pub(crate) async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.url), params)
            .map_err(|e| format!("{path}: {e}"))?;
        let (status, body) = get(&self.client, url.as_str()).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("{path}: HTTP {status}, not JSON ({e}): {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("{path} {params:?}: HTTP {status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// An instant query's vector (or scalar) result.
    pub(crate) async fn query(&self, q: &str) -> Result<Vec<Row>, String> {
        let data = self.api("/api/v1/query", &[("query", q)]).await?;
        let parse = |v: &Value| -> Option<f64> { v[1].as_str()?.parse().ok() };
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Row {
                    labels: s["metric"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                    value: parse(&s["value"]).unwrap_or(f64::NAN),
                })
                .collect()),
            Some("scalar") => Ok(parse(&data["result"])
                .map(|value| Row {
                    labels: BTreeMap::new(),
                    value,
                })
                .into_iter()
                .collect()),
            _ => Err(format!("query {q}: unexpected result {data}")),
        }
    }
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok((status, body))
}

pub(crate) async fn post(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = client
        .post(url)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("POST {url}: {e}"))?;
    Ok((status, body))
}

/// Polls `f` every 250ms until it is done, fails, or the deadline passes.
pub(crate) async fn poll<T, F, Fut>(deadline: Instant, what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, String>>,
{
    loop {
        let last = match f().await {
            Ok(Poll::Done(v)) => return Ok(v),
            Ok(Poll::NotYet(e)) => e,
            Err(e) => return Err(format!("while waiting for {what}: {e}")),
        };
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}; last state:\n{last}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// For checks that only ever say "not yet": `Err` means poll again.
pub(crate) fn retry(r: Result<(), String>) -> Result<Poll<()>, String> {
    Ok(match r {
        Ok(()) => Poll::Done(()),
        Err(e) => Poll::NotYet(e),
    })
}

// --- Processes -------------------------------------------------------------------

/// A child process, killed on drop, with its output in a log file.
pub(crate) struct Proc {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Proc {
        let out = File::create(log).expect("create log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its output, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- last output of {} ---\n{tail}", self.name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `url` to answer 200, failing early if the process exits.
pub(crate) async fn wait_http_ok(
    client: &reqwest::Client,
    p: &mut Proc,
    url: &str,
    deadline: Instant,
) {
    loop {
        if let Some(status) = p.exited() {
            panic!(
                "{} exited ({status}) before {url} answered\n{}",
                p.name,
                p.log_tail()
            );
        }
        let last = match get(client, url).await {
            Ok((200, _)) => return,
            Ok((status, body)) => format!("HTTP {status}: {body}"),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{} did not answer 200 on {url} in time; last: {last}\n{}",
            p.name,
            p.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub(crate) fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
