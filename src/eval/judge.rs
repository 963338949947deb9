//! Optional LLM-judge preference through an OpenAI-compatible `/chat/completions` endpoint.
//! Answer order is shuffled per item (seeded), so a judge that favours a position cannot
//! favour a system.
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use serde::Deserialize;

/// `[judge]` config table. Without `url` the judge is off and tables say so.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is appended).
    pub url: Option<String>,
    #[serde(default)]
    pub model: String,
    /// Name of the environment variable holding the API key (sent as a Bearer token).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// The baseline system the others are compared with.
    #[serde(default)]
    pub baseline: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// A judge failure fails `evaluate` (after its files are written); false keeps the
    /// table with the failure in the judge column and exits 0.
    #[serde(default = "default_required")]
    pub required: bool,
    /// Also judge style, meaning and fluency pairwise against the baseline, each pair asked
    /// in both orders, written as a blind review (sheet, key, verdicts, score) per system.
    #[serde(default)]
    pub pairwise: bool,
    /// PEM file of the certificate authorities an `https://` judge is checked against
    /// (replaces the system's roots; for a private or self-signed endpoint).
    pub ca_bundle: Option<std::path::PathBuf>,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            url: None,
            model: String::new(),
            api_key_env: default_key_env(),
            baseline: String::new(),
            seed: 0,
            timeout_s: default_timeout(),
            required: default_required(),
            pairwise: false,
            ca_bundle: None,
        }
    }
}

impl JudgeConfig {
    /// Checks the URL's form and the timeout before any generation (the judge runs last).
    pub fn validate(&self) -> Result<()> {
        let Some(url) = &self.url else {
            return Ok(());
        };
        check_url(url)?;
        crate::config::check::at_least_one("judge.timeout_s", self.timeout_s)?;
        if let Some(p) = &self.ca_bundle {
            ca_roots(p)?;
        }
        Ok(())
    }
}

/// The certificates of a PEM bundle as a root store; one line naming the file on failure.
pub fn ca_roots(path: &std::path::Path) -> Result<rustls::RootCertStore> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let what = || format!("judge.ca_bundle = {}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .and_then(|it| {
            it.collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))
        })
        .with_context(|| format!("{}: cannot read PEM certificates", what()))?;
    if certs.is_empty() {
        bail!(
            "{}: no certificates in it: give a PEM file of CA certificates",
            what()
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("{}: a certificate is not usable", what()))?;
    }
    Ok(roots)
}

/// The HTTP agent: rustls with the system's (and webpki's) roots, or only `ca_bundle`'s.
fn agent(cfg: &JudgeConfig) -> Result<ureq::Agent> {
    // No redirects: an answer is expected from judge.url itself, and a redirect elsewhere
    // (another scheme, another host) is refused rather than followed.
    let mut b = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(cfg.timeout_s))
        .redirects(0);
    if let Some(p) = &cfg.ca_bundle {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(ca_roots(p)?)
            .with_no_client_auth();
        b = b.tls_config(std::sync::Arc::new(tls));
    }
    Ok(b.build())
}

/// `http://host[:port][/path]` or `https://…`, with a host and a numeric port.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| -> Result<()> {
        bail!("judge.url = '{url}': {why}; expected http(s)://HOST[:PORT]/PATH, e.g. http://127.0.0.1:8000/v1")
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("no scheme");
    };
    if scheme != "http" && scheme != "https" {
        return bad(&format!("scheme '{scheme}' is not http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = match host_port.strip_prefix('[') {
        // [IPv6]:port
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return bad("unclosed '[' in the host"),
        },
        None => match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return bad("no host");
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return bad(&format!("port '{p}' is not a number from 0 to 65535"));
        }
    }
    Ok(())
}

fn default_required() -> bool {
    true
}

fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}
fn default_timeout() -> u64 {
    60
}

/// One comparison: the original text and two rewrites.
pub struct JudgeItem<'a> {
    pub input: &'a str,
    pub system: &'a str,
    pub baseline: &'a str,
}

const INSTRUCTION: &str = "You compare two rewrites of the same text. A good rewrite keeps the \
meaning and every name, number and date, reads naturally, and follows the requested style. \
Answer with exactly one letter: A or B.";

pub struct Judge {
    cfg: JudgeConfig,
    endpoint: String,
    key: Option<String>,
    /// Err: the TLS setup failed (reported by each request, so evaluate fails as for any judge error).
    agent: std::result::Result<ureq::Agent, String>,
}

impl Judge {
    /// `None` when no endpoint is configured.
    pub fn new(cfg: &JudgeConfig) -> Option<Judge> {
        let url = cfg.url.as_ref()?;
        let endpoint = format!("{}/chat/completions", url.trim_end_matches('/'));
        let agent = agent(cfg).map_err(|e| format!("{e:#}"));
        let key = std::env::var(&cfg.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        Some(Judge {
            cfg: cfg.clone(),
            endpoint,
            key,
            agent,
        })
    }

    /// Percentage (0..=100) of items where the judge preferred the system's rewrite.
    pub fn preference(&self, items: &[JudgeItem], style_hint: &str) -> Result<f64> {
        if items.is_empty() {
            bail!("judge: no items to compare");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.cfg.seed);
        let mut wins = 0usize;
        for (n, it) in items.iter().enumerate() {
            let system_first = rng.gen_bool(0.5);
            let (a, b) = if system_first {
                (it.system, it.baseline)
            } else {
                (it.baseline, it.system)
            };
            let prompt = format!(
                "Target style: {style_hint}\n\nOriginal:\n{}\n\nRewrite A:\n{a}\n\nRewrite B:\n{b}\n\nWhich rewrite is better?",
                it.input
            );
            let choice = self
                .ask(&prompt)
                .with_context(|| format!("judge item {n}"))?;
            if (choice == 'A') == system_first {
                wins += 1;
            }
        }
        Ok(100.0 * wins as f64 / items.len() as f64)
    }

    fn complete(&self, instruction: &str, prompt: &str) -> Result<String> {
        let body = serde_json::json!({
            "model": self.cfg.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": instruction},
                {"role": "user", "content": prompt},
            ],
        });
        let agent = self.agent.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut req = agent.post(&self.endpoint);
        if let Some(k) = &self.key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let r = req
            .send_json(body)
            .with_context(|| format!("request to {} failed: check judge.url", self.endpoint))?;
        if r.status() >= 300 {
            bail!(
                "request to {} answered HTTP {} (redirects are not followed): check judge.url",
                self.endpoint,
                r.status()
            );
        }
        // A bounded read: an endless or huge body is an error, not a hang.
        let mut buf = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(r.into_reader(), MAX_BODY + 1),
            &mut buf,
        )
        .with_context(|| format!("reading the answer of {}", self.endpoint))?;
        if buf.len() as u64 > MAX_BODY {
            bail!("judge answer is over {MAX_BODY} bytes: check judge.url");
        }
        let resp: serde_json::Value =
            serde_json::from_slice(&buf).context("judge answer is not JSON")?;
        let text = resp["choices"][0]["message"]["content"]
            .as_str()
            .context("judge answer has no choices[0].message.content")?;
        Ok(text.to_string())
    }

    fn ask(&self, prompt: &str) -> Result<char> {
        let text = self.complete(INSTRUCTION, prompt)?;
        parse_choice(&text)
            .with_context(|| format!("judge answered '{}', expected A or B", text.trim()))
    }

    /// Style, meaning and fluency of each item from the system's side, each pair asked in
    /// both orders: a dimension is won or lost only when both orders agree, else a tie
    /// (a judge that prefers a position cannot favour a system).
    pub fn pairwise(&self, items: &[JudgeItem], style_hint: &str) -> Result<Vec<[Outcome; 3]>> {
        let mut out = Vec::with_capacity(items.len());
        for (n, it) in items.iter().enumerate() {
            let mut per_order = Vec::new();
            for system_first in [true, false] {
                let (a, b) = if system_first {
                    (it.system, it.baseline)
                } else {
                    (it.baseline, it.system)
                };
                let prompt = format!(
                    "Target style: {style_hint}\n\nOriginal:\n{}\n\nRewrite A:\n{a}\n\nRewrite B:\n{b}\n\n{PAIRWISE_ASK}",
                    it.input
                );
                let text = self
                    .complete(PAIRWISE_INSTRUCTION, &prompt)
                    .with_context(|| format!("judge item {n}"))?;
                let c = parse_three(&text).with_context(|| {
                    format!(
                        "judge item {n}: answered '{}', expected three lines 'style: A|B|tie' …",
                        text.trim()
                    )
                })?;
                per_order.push(c.map(|x| match (x, system_first) {
                    (None, _) => Outcome::Tie,
                    (Some('A'), true) | (Some('B'), false) => Outcome::Win,
                    _ => Outcome::Loss,
                }));
            }
            out.push(std::array::from_fn(|d| {
                if per_order[0][d] == per_order[1][d] {
                    per_order[0][d]
                } else {
                    Outcome::Tie
                }
            }));
        }
        Ok(out)
    }
}

/// The largest judge answer read (bytes).
const MAX_BODY: u64 = 1 << 20;

const PAIRWISE_INSTRUCTION: &str = "You compare two rewrites of the same text on three \
separate questions. Answer exactly as asked, nothing else.";

const PAIRWISE_ASK: &str = "Compare A and B on three separate questions: style (which is closer \
to the target style), meaning (which keeps the original's facts, requests and negations), fluency \
(which reads as natural, well-formed text). Answer with exactly three lines:\nstyle: A, B or tie\n\
meaning: A, B or tie\nfluency: A, B or tie";

/// A system's result on one dimension of one item, against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Win,
    Loss,
    Tie,
}

/// The three lines of a pairwise answer: `Some('A' | 'B')` or `None` for a tie, per dimension
/// (style, meaning, fluency); `None` overall when a line is missing or unreadable.
pub fn parse_three(text: &str) -> Option<[Option<char>; 3]> {
    let mut out = [None; 3];
    for (d, name) in ["style", "meaning", "fluency"].iter().enumerate() {
        let line = text.lines().find(|l| {
            l.trim()
                .trim_start_matches(['*', '-', ' '])
                .to_lowercase()
                .starts_with(name)
        })?;
        let rest = line.split_once(':')?.1;
        let word = rest
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| !w.is_empty())?;
        out[d] = match word {
            "A" | "a" => Some('A'),
            "B" | "b" => Some('B'),
            w if w.eq_ignore_ascii_case("tie") => None,
            _ => return None,
        };
    }
    Some(out)
}

/// The first standalone `A` or `B` in the answer.
pub fn parse_choice(text: &str) -> Option<char> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|w| match w {
            "A" => Some('A'),
            "B" => Some('B'),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback judge answering `n` requests by picking the rewrite containing "GOOD".
    fn serve(n: usize) -> (String, std::thread::JoinHandle<usize>) {
        crate::eval::judge_stub::serve(n, |prompt| {
            let a_part = prompt
                .split("Rewrite A:")
                .nth(1)
                .unwrap()
                .split("Rewrite B:")
                .next()
                .unwrap();
            let pick = if a_part.contains("GOOD") { "A" } else { "B" };
            format!("{pick}.")
        })
    }

    #[test]
    fn shuffled_order_still_credits_the_right_system() {
        let (url, h) = serve(12);
        let cfg = JudgeConfig {
            url: Some(url),
            model: "m".into(),
            api_key_env: "STYLERL_TEST_NO_KEY".into(),
            seed: 3,
            timeout_s: 10,
            ..Default::default()
        };
        let judge = Judge::new(&cfg).unwrap();
        let items: Vec<JudgeItem> = (0..6)
            .map(|_| JudgeItem {
                input: "x",
                system: "GOOD one",
                baseline: "meh",
            })
            .collect();
        assert_eq!(judge.preference(&items, "tale").unwrap(), 100.0);
        let items: Vec<JudgeItem> = (0..6)
            .map(|_| JudgeItem {
                input: "x",
                system: "meh",
                baseline: "GOOD",
            })
            .collect();
        assert_eq!(judge.preference(&items, "tale").unwrap(), 0.0);
        assert_eq!(h.join().unwrap(), 12);
    }

    /// A self-signed certificate for 127.0.0.1, its key, and the PEM file holding it.
    fn self_signed(dir: &std::path::Path) -> (rcgen::CertifiedKey, std::path::PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, ck.cert.pem()).unwrap();
        (ck, pem)
    }

    fn tls_judge(ck: &rcgen::CertifiedKey, n: usize) -> (String, std::thread::JoinHandle<usize>) {
        let cert = ck.cert.der().clone();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
        crate::eval::judge_stub::serve_tls(n, vec![cert], key, |_| "A".into())
    }

    #[test]
    fn https_judge_works_with_a_configured_ca_bundle_only() {
        let d = tempfile::tempdir().unwrap();
        let (ck, pem) = self_signed(d.path());
        let items = [JudgeItem {
            input: "x",
            system: "s",
            baseline: "b",
        }];
        // Trusted through judge.ca_bundle: two requests answered over TLS.
        let (url, h) = tls_judge(&ck, 2);
        let cfg = JudgeConfig {
            url: Some(url.clone()),
            api_key_env: "STYLERL_TEST_NO_KEY".into(),
            timeout_s: 10,
            ca_bundle: Some(pem.clone()),
            ..Default::default()
        };
        cfg.validate().unwrap();
        let judge = Judge::new(&cfg).unwrap();
        let p = judge.preference(&items, "t").unwrap();
        assert!(p == 0.0 || p == 100.0, "{p}");
        judge.preference(&items, "t").unwrap();
        assert_eq!(h.join().unwrap(), 2);
        // The system's roots do not know this certificate: the request fails, naming the URL.
        let (url, h) = tls_judge(&ck, 1);
        let plain = JudgeConfig {
            url: Some(url),
            ca_bundle: None,
            ..cfg.clone()
        };
        let e = format!(
            "{:#}",
            Judge::new(&plain)
                .unwrap()
                .preference(&items, "t")
                .unwrap_err()
        );
        assert!(
            e.contains("request to https://127.0.0.1") && e.contains("failed"),
            "{e}"
        );
        assert_eq!(h.join().unwrap(), 0);
        // A bundle that is not PEM is refused by validate, naming the key.
        std::fs::write(&pem, "not a certificate").unwrap();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("judge.ca_bundle = ") && e.contains("no certificates"),
            "{e}"
        );
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        for ok in [
            "http://127.0.0.1:8000/v1",
            "https://api.openai.com/v1",
            "http://[::1]:9/v1",
            "http://localhost",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "notaurl",
            "ftp://x/v1",
            "http:///v1",
            "http://h:port/v1",
            "http://[::1/v1",
        ] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("judge.url = '{bad}'")), "{e}");
        }
        let cfg = JudgeConfig {
            url: Some("http://h/v1".into()),
            timeout_s: 0,
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.starts_with("judge.timeout_s = 0: must be ≥ 1"), "{e}");
    }

    #[test]
    fn parse_choice_reads_a_letter() {
        assert_eq!(parse_choice("B"), Some('B'));
        assert_eq!(parse_choice("Answer: A."), Some('A'));
        assert_eq!(parse_choice("Both are fine"), None);
        assert!(Judge::new(&JudgeConfig::default()).is_none());
    }
}
