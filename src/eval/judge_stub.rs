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
            let mut s = stream.expect("accept");
            let mut r = BufReader::new(s.try_clone().expect("clone the stream"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).expect("read a header line");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("a numeric content-length");
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).expect("read the body");
            let req: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
            let prompt = req["messages"][1]["content"].as_str().unwrap_or_default();
            let out = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": answer(prompt)}}]})
                .to_string();
            write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}", out.len())
                .expect("write the reply");
            served += 1;
        }
        served
    });
    (format!("http://{addr}/v1"), handle)
}
