//! A loopback stand-in for an OpenAI-compatible chat endpoint, for testing the judge without
//! a network: it answers a fixed number of requests with whatever `answer` returns for the
//! user message (the judge prompt).
use std::io::{BufRead, BufReader, Read, Write};

/// Serves `n` chat-completion requests on 127.0.0.1 (any free port), then stops.
/// Returns the base URL (`http://127.0.0.1:PORT/v1`) and a handle yielding the number served.
pub fn serve(
    n: usize,
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("loopback address");
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().take(n) {
            reply(stream.expect("accept"), &answer);
            served += 1;
        }
        served
    });
    (format!("http://{addr}/v1"), handle)
}

/// As [`serve`] over TLS with the certificate chain `certs` and its `key`
/// (`https://127.0.0.1:PORT/v1`). A connection whose handshake fails (a client that does
/// not trust the certificate) counts as one of the `n` but not as served.
pub fn serve_tls(
    n: usize,
    certs: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::thread::JoinHandle<usize>) {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a usable certificate and key");
    let cfg = std::sync::Arc::new(cfg);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("loopback address");
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().take(n) {
            let conn = rustls::ServerConnection::new(cfg.clone()).expect("a TLS session");
            let mut tls = rustls::StreamOwned::new(conn, stream.expect("accept"));
            // The handshake runs on first use; a refused one ends this connection only.
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                continue;
            }
            if reply(&mut tls, &answer) {
                tls.conn.send_close_notify();
                let _ = tls.conn.complete_io(&mut tls.sock);
                served += 1;
            }
        }
        served
    });
    (format!("https://{addr}/v1"), handle)
}

/// Reads one request from `s` and writes the chat reply; false when the request is cut.
fn reply(mut s: impl Read + Write, answer: &impl Fn(&str) -> String) -> bool {
    let (mut len, mut body) = (0usize, Vec::new());
    {
        let mut r = BufReader::new(&mut s);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                return false;
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().expect("a numeric content-length");
            }
        }
        body.resize(len, 0);
        if r.read_exact(&mut body).is_err() {
            return false;
        }
    }
    let req: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    let prompt = req["messages"][1]["content"].as_str().unwrap_or_default();
    let out = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": answer(prompt)}}]})
        .to_string();
    write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}", out.len())
        .and_then(|_| s.flush())
        .is_ok()
}
