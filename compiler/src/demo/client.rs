//! The demo's HTTP client: requests to the proxy by Host, counted by who answered.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Counts, Step};

/// Concurrent requests per counted scenario.
const CONCURRENCY: u32 = 8;
/// No answer in this long is a failure of the demo (the longest Bookinfo delay is 7 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub elapsed: Duration,
}

impl Answer {
    /// What answered: a service (`reviews v2`), a fault abort, or a status.
    fn outcome(&self) -> String {
        match self.status {
            200 => self.body.trim().to_owned(),
            status if self.body == "fault filter abort" => format!("HTTP {status} (fault)"),
            status => format!("HTTP {status}"),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    proxy: SocketAddr,
    pool: Pool<HttpConnector, Empty<Bytes>>,
}

impl Client {
    pub fn new(proxy: SocketAddr) -> Client {
        Client {
            proxy,
            pool: Pool::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// One request through the proxy, for `host`.
    pub async fn get(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        self.send(self.proxy, host, path, headers).await
    }

    /// One request to the proxy's admin port.
    pub async fn admin(&self, admin: SocketAddr, path: &str) -> Result<Answer, String> {
        self.send(admin, &admin.to_string(), path, &[]).await
    }

    async fn send(
        &self,
        to: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut builder = Request::builder()
            .uri(format!("http://{to}{path}"))
            .header(http::header::HOST, host);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Empty::new())
            .map_err(|e| format!("cannot build a request for {host}{path}: {e}"))?;
        let started = Instant::now();
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.pool.request(request))
            .await
            .map_err(|_| format!("no answer from {to} for {host}{path} in {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| format!("request to {to} for {host}{path} failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer from {to} for {host}{path}: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            elapsed: started.elapsed(),
        })
    }

    /// Sends `n` requests, a few at a time, and counts who answered.
    pub async fn count(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        n: u32,
        step: &mut Step,
    ) -> Result<Counts, String> {
        self.count_with(host, path, headers, n, CONCURRENCY, step)
            .await
    }

    /// Sends `n` requests, `concurrency` at a time, and counts who answered.
    pub async fn count_with(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        n: u32,
        concurrency: u32,
        step: &mut Step,
    ) -> Result<Counts, String> {
        let concurrency = concurrency.max(1);
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut tasks = Vec::new();
        for t in 0..concurrency {
            let share = n / concurrency + u32::from(t < n % concurrency);
            let client = self.clone();
            let (host, path, headers) = (host.to_owned(), path.to_owned(), headers.clone());
            let sent = step.sent.clone();
            tasks.push(tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let mut counts = Counts::default();
                for _ in 0..share {
                    let answer = client.get(&host, &path, &headers).await?;
                    counts.add(answer.outcome());
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, String>(counts)
            }));
        }
        let mut all = Counts::default();
        for mut task in tasks {
            let counts = loop {
                tokio::select! {
                    joined = &mut task => break joined,
                    () = tokio::time::sleep(Duration::from_millis(100)) => step.draw(),
                }
            };
            all.merge(counts.map_err(|e| format!("a request task failed: {e}"))??);
        }
        step.draw();
        Ok(all)
    }
}
