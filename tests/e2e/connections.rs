//! End to end: how `olo serve` treats its clients over real sockets: slow or silent clients,
//! the connection and large-body limits, oversized request targets and headers.

use std::time::Duration;

use crate::common::daemon::{assert_error_shape, Daemon, TOKEN, WHO};
use crate::common::{job, Repo};
use serde_json::Value;

/// Reads `stream` to its end: the server closed the connection (a reset counts too). Fails if
/// it is still open after a minute (the server would hold it forever).
async fn closed_by_server(stream: &mut tokio::net::TcpStream, what: &str) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    match tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut buf)).await {
        Ok(_) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => panic!("{what}: the connection is still open"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_server_keeps_answering() {
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpStream;

    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    // Short deadlines: the test checks what happens at them, not how long they are.
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__HEADER_TIMEOUT_SECONDS", "1"),
            ("OLO_SERVER__BODY_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();

    // Half-sent headers (slowloris), and a connection that sends nothing at all.
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    closed_by_server(&mut half, "half-sent headers").await;
    closed_by_server(&mut silent, "a silent connection").await;

    // A webhook body that stalls after a few bytes of its declared 1,000: 408, then closed.
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            b"POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ref\":",
        )
        .await
        .unwrap();
    let answer = closed_by_server(&mut stalled, "a stalled webhook body").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert_error_shape(&serde_json::from_str(body).unwrap(), "request_timeout");

    // The same for an API body (read by the JSON extractor).
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            format!(
                "POST /api/v1/reconcile HTTP/1.1\r\nHost: olo\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    closed_by_server(&mut stalled, "a stalled API body").await;

    // A keep-alive connection left idle after an answer is closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: olo\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_by_server(&mut idle, "an idle keep-alive connection").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Everyone else is still served.
    assert_eq!(d.get_text("/healthz").await, "ok\n");
    let metrics = d.get_text("/metrics").await;
    let line = "olo_webhook_deliveries_total{event=\"push\",result=\"unreadable\"} 1";
    assert!(metrics.contains(line), "no `{line}` in:\n{metrics}");
}

/// Sends `request` (whole) on `stream` and reads the answer until olo closes; returns the
/// answer's status line. The caller connects first, so the order in which connections reach
/// olo's accept queue is the test's, whatever the scheduler does.
async fn exchange(stream: tokio::net::TcpStream, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut read, mut write) = stream.into_split();
    // A large body fills the socket buffers: write it beside the read.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut answer)).await;
    drop(writer.await);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Whether `task` is still waiting for its answer after `wait` (olo holds it back), then its
/// answer.
async fn held_back(mut task: tokio::task::JoinHandle<String>, wait: Duration) -> (bool, String) {
    match tokio::time::timeout(wait, &mut task).await {
        Ok(answer) => (false, answer.unwrap()),
        Err(_) => (true, task.await.unwrap()),
    }
}

/// `server.max_connections`: past it a new connection waits in the kernel's accept queue until
/// a slot frees, so olo's open files stay bounded. Here both slots hold silent connections,
/// which olo closes at the 3 s header timeout: a health check sent behind them is not answered
/// in its first 1.5 s (without the limit it is answered at once), then it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_new_connection_waits_for_a_free_slot() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__HEADER_TIMEOUT_SECONDS", "3"),
            ("OLO_SERVER__MAX_CONNECTIONS", "2"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let connect = || tokio::net::TcpStream::connect(addr.clone());
    let mut silent = Vec::new();
    for _ in 0..2 {
        // Connected, sending nothing: closed by olo at the header timeout.
        silent.push(tokio::spawn(exchange(connect().await.unwrap(), Vec::new())));
    }
    // In olo's accept queue behind both silent connections.
    let health = tokio::spawn(exchange(
        connect().await.unwrap(),
        b"GET /healthz HTTP/1.1\r\nHost: olo\r\nConnection: close\r\n\r\n".to_vec(),
    ));
    let (held, answer) = held_back(health, Duration::from_millis(1500)).await;
    assert!(
        held,
        "the health check was answered while both slots were taken"
    );
    assert_eq!(answer, "HTTP/1.1 200 OK");
    for s in silent {
        // Closed by olo at the header timeout (the read ends).
        s.await.unwrap();
    }
    // Once the slots are free again, everyone is served.
    assert_eq!(d.get_text("/healthz").await, "ok\n");
}

/// `server.max_large_bodies`: a webhook delivery over 1 MiB is read only while fewer than that
/// many large ones are being read. Here one slot: a large delivery that stalls holds it until the
/// 6 s body timeout (408); a second, complete one sent 2 s later is not answered in its next
/// 1.5 s (without the limit it is read and refused at once), then it is read and refused for its
/// forged signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_large_bodies_a_large_delivery_waits_for_the_one_being_read() {
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(
        &repo,
        &[
            ("OLO_SERVER__BODY_TIMEOUT_SECONDS", "6"),
            ("OLO_SERVER__MAX_LARGE_BODIES", "1"),
        ],
    )
    .await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let head = |id: &str, length: usize| {
        format!(
            "POST /webhooks/github HTTP/1.1\r\nHost: olo\r\nX-GitHub-Event: push\r\n\
             X-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: sha256=00\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    };
    // 2 MB declared, 7 bytes sent.
    let mut stalled = head("large-stalled", 2_000_000);
    stalled.extend_from_slice(b"{\"ref\":");
    let first = tokio::spawn(exchange(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        stalled,
    ));
    // Time for olo to take the stalled delivery's slot.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // 1.5 MB, all of it.
    let mut whole = head("large-whole", 1_500_000);
    whole.extend(std::iter::repeat_n(b' ', 1_500_000));
    let second = tokio::spawn(exchange(
        tokio::net::TcpStream::connect(&addr).await.unwrap(),
        whole,
    ));
    let (held, answer) = held_back(second, Duration::from_millis(1500)).await;
    assert!(
        held,
        "the second large delivery was read while the first held the slot"
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(first.await.unwrap().starts_with("HTTP/1.1 408"));
}

/// A request target or headers larger than olo reads get 414 and 431 in the error shape (with an
/// error id), through the real HTTP stack: hyper lets them through to olo's check, which comes
/// before its own, empty, refusals. Within the limits the same request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_target_or_header_block_is_refused_in_the_error_shape() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let repo = Repo::new();
    repo.write("workspaces/w/jobs/one.yaml", &job("one", "echo 1"));
    repo.commit("one", WHO);
    let d = Daemon::start(&repo, &[]).await;
    let addr = d.base.trim_start_matches("http://").to_string();
    let send = |request: String| {
        let addr = addr.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
                .await
                .expect("olo answers and closes")
                .unwrap();
            let answer = String::from_utf8_lossy(&answer).to_string();
            let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
            let status = head.lines().next().unwrap_or("").to_string();
            (
                status,
                serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
            )
        }
    };
    let get = |target: String, headers: String| {
        format!("GET {target} HTTP/1.1\r\nHost: olo\r\n{headers}Connection: close\r\n\r\n")
    };

    let (status, body) = send(get(
        format!("/api/v1/status?x={}", "a".repeat(9_000)),
        String::new(),
    ))
    .await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    assert_error_shape(&body, "uri_too_long");
    insta::assert_snapshot!("uri_too_long", body["error"]["message"].as_str().unwrap());
    let (status, _) = send(get(
        format!("/api/v1/status?x={}", "a".repeat(7_000)),
        String::new(),
    ))
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // 150 header lines: more than olo reads, fewer than hyper refuses by itself.
    let many: String = (0..150).map(|i| format!("X-Extra-{i}: v\r\n")).collect();
    let (status, body) = send(get("/api/v1/status".into(), many)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_error_shape(&body, "headers_too_large");
    insta::assert_snapshot!(
        "too_many_header_lines",
        body["error"]["message"].as_str().unwrap()
    );
    // 40 KB of headers in few lines.
    let large: String = (0..10)
        .map(|i| format!("X-Big-{i}: {}\r\n", "v".repeat(4_000)))
        .collect();
    let (status, body) = send(get("/api/v1/status".into(), large)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_error_shape(&body, "headers_too_large");
    insta::assert_snapshot!(
        "header_block_too_large",
        body["error"]["message"].as_str().unwrap()
    );
    let (status, _) = send(get("/api/v1/status".into(), "X-Small: v\r\n".into())).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}
