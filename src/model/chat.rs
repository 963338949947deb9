//! Chat templates from tokenizer_config.json (or chat_template.jinja), rendered with minijinja
//! the way transformers' `apply_chat_template` renders them with jinja2: trim_blocks and
//! lstrip_blocks on, `raise_exception`, `strftime_now`, a Python-style `tojson`, and the
//! common Python string/dict methods templates call (`.strip()`, `.startswith()`, `.items()`…).
use anyhow::{bail, Context, Result};
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

pub struct ChatTemplate {
    pub source: String,
    /// bos_token, eos_token, pad_token, unk_token from tokenizer_config.json.
    pub special: BTreeMap<String, String>,
}

impl ChatTemplate {
    /// The directory's template: tokenizer_config.json `chat_template` (a string, or a list of
    /// named templates, "default" chosen), else chat_template.jinja.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let special = super::tokenizer::Tokenizer::from_dir(dir)
            .map(|t| t.special)
            .unwrap_or_default();
        let cfg_path = dir.join("tokenizer_config.json");
        let read = |p: &Path| match std::fs::read_to_string(p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
        if let Some(text) = read(&cfg_path)? {
            let v: serde_json::Value =
                serde_json::from_str(&text).context("tokenizer_config.json is not valid JSON")?;
            match v.get("chat_template") {
                Some(serde_json::Value::String(s)) => {
                    return Ok(Self {
                        source: s.clone(),
                        special,
                    })
                }
                Some(serde_json::Value::Array(list)) => {
                    let pick = list
                        .iter()
                        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                        .or(list.first())
                        .and_then(|t| t.get("template"))
                        .and_then(|t| t.as_str());
                    if let Some(s) = pick {
                        return Ok(Self {
                            source: s.to_string(),
                            special,
                        });
                    }
                }
                _ => {}
            }
        }
        let jinja = dir.join("chat_template.jinja");
        if let Some(s) = read(&jinja)? {
            return Ok(Self { source: s, special });
        }
        bail!("{} has no chat template (tokenizer_config.json chat_template or chat_template.jinja): drop --chat", dir.display())
    }

    /// Renders `messages` (role/content objects); `add_generation_prompt` opens the assistant turn.
    pub fn render<M: Serialize>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let env = environment();
        let tmpl = env
            .template_from_str(&self.source)
            .map_err(|e| anyhow::anyhow!("chat template does not parse: {e}"))?;
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &self.special {
            ctx.insert(k.clone(), Value::from(v.clone()));
        }
        ctx.insert("messages".into(), Value::from_serialize(messages));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        tmpl.render(ctx).map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => anyhow::anyhow!(
                "chat template ran past {FUEL} steps without finishing (a loop that never ends, or loops nested too deep): fix the template in tokenizer_config.json or chat_template.jinja"
            ),
            _ => anyhow::anyhow!("chat template failed: {e}"),
        })
    }

    /// One user turn (optionally after a system turn); with `add_generation_prompt`, ready
    /// for the assistant's answer.
    pub fn render_user(
        &self,
        system: Option<&str>,
        user: &str,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let mut m = Vec::new();
        if let Some(s) = system {
            m.push(ChatMessage::new("system", s));
        }
        m.push(ChatMessage::new("user", user));
        self.render(&m, add_generation_prompt)
    }
}

/// The most template instructions one render may run. A real chat template spends a few
/// dozen per message, so this allows conversations of ~100k turns and stops a template
/// whose loops would run for hours (nested `range` loops) within about a second.
const FUEL: u64 = 5_000_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
        Err(Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.add_function("strftime_now", |fmt: String| -> Result<Value, Error> {
        Ok(Value::from(strftime_now(&fmt)))
    });
    env.add_filter(
        "tojson",
        |v: Value, indent: Option<usize>| -> Result<Value, Error> {
            let j = serde_json::to_value(&v)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            let mut out = String::new();
            python_json(&j, indent, 0, &mut out);
            Ok(Value::from_safe_string(out))
        },
    );
    env.set_unknown_method_callback(python_method);
    env
}

/// json.dumps(x, ensure_ascii=False[, indent]) with Python's default separators.
pub fn python_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value as J;
    let (nl, item_sep) = match indent {
        Some(n) => (format!("\n{}", " ".repeat(n * (depth + 1))), ","),
        None => (String::new(), ", "),
    };
    let close = match indent {
        Some(n) => format!("\n{}", " ".repeat(n * depth)),
        None => String::new(),
    };
    match v {
        J::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                out.push_str(&nl);
                python_json(x, indent, depth + 1, out);
            }
            out.push_str(&close);
            out.push(']');
        }
        J::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                out.push_str(&nl);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                python_json(x, indent, depth + 1, out);
            }
            out.push_str(&close);
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

fn arg_str(args: &[Value], i: usize) -> Option<String> {
    args.get(i).and_then(|a| a.as_str().map(String::from))
}

/// The Python methods chat templates call on strings and dicts.
fn python_method(
    _: &minijinja::State,
    v: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let unknown = || {
        Error::new(
            ErrorKind::UnknownMethod,
            format!("no method {method} on {}", v.kind()),
        )
    };
    if let Some(s) = v.as_str() {
        let chars = arg_str(args, 0);
        let pat = |c: char| match &chars {
            Some(cs) => cs.contains(c),
            None => c.is_whitespace(),
        };
        return Ok(match method {
            "strip" => Value::from(s.trim_matches(pat)),
            "lstrip" => Value::from(s.trim_start_matches(pat)),
            "rstrip" => Value::from(s.trim_end_matches(pat)),
            "upper" => Value::from(s.to_uppercase()),
            "lower" => Value::from(s.to_lowercase()),
            "startswith" => Value::from(chars.is_some_and(|p| s.starts_with(p.as_str()))),
            "endswith" => Value::from(chars.is_some_and(|p| s.ends_with(p.as_str()))),
            "replace" => match (arg_str(args, 0), arg_str(args, 1)) {
                (Some(a), Some(b)) => Value::from(s.replace(&a, &b)),
                _ => return Err(unknown()),
            },
            "split" => {
                let parts: Vec<Value> = match chars {
                    Some(sep) => s.split(sep.as_str()).map(Value::from).collect(),
                    None => s.split_whitespace().map(Value::from).collect(),
                };
                Value::from(parts)
            }
            "title" => Value::from(
                s.split(' ')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| {
                                f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase()
                            })
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => return Err(unknown()),
        });
    }
    if v.kind() == ValueKind::Map {
        let keys: Vec<Value> = v.try_iter()?.collect();
        return Ok(match method {
            "keys" => Value::from(keys),
            "values" => Value::from(
                keys.iter()
                    .map(|k| v.get_item(k).unwrap_or_default())
                    .collect::<Vec<_>>(),
            ),
            "items" => Value::from(
                keys.iter()
                    .map(|k| Value::from(vec![k.clone(), v.get_item(k).unwrap_or_default()]))
                    .collect::<Vec<_>>(),
            ),
            "get" => {
                let k = args.first().cloned().unwrap_or_default();
                match v.get_item(&k) {
                    Ok(x) if !x.is_undefined() => x,
                    _ => args.get(1).cloned().unwrap_or(Value::from(())),
                }
            }
            _ => return Err(unknown()),
        });
    }
    Err(unknown())
}

/// The current UTC time formatted with a small strftime subset (%d %m %Y %y %b %B %H %M %S %%).
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y % 100)),
            Some('b') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpl(src: &str) -> ChatTemplate {
        let special = [("bos_token".to_string(), "<s>".to_string())]
            .into_iter()
            .collect();
        ChatTemplate {
            source: src.to_string(),
            special,
        }
    }

    #[test]
    fn python_methods_and_exceptions() {
        let t = tmpl("{{ bos_token }}{% for m in messages %}{{ m['content'].strip().upper() }}|{% if m.role.startswith('us') %}U{% endif %}\n{% endfor %}");
        let out = t
            .render(&[ChatMessage::new("user", "  hi ")], false)
            .unwrap();
        assert_eq!(out, "<s>HI|U"); // trim_blocks eats the newline after endif, as in jinja2
        let t = tmpl(
            "{% if messages|length > 1 %}{{ raise_exception('only one message') }}{% endif %}ok",
        );
        let two = [ChatMessage::new("user", "a"), ChatMessage::new("user", "b")];
        assert!(t
            .render(&two, false)
            .unwrap_err()
            .to_string()
            .contains("only one message"));
    }

    #[test]
    fn tojson_matches_python_defaults() {
        let v = serde_json::json!({"a": [1, "é"], "b": {}});
        let mut s = String::new();
        python_json(&v, None, 0, &mut s);
        assert_eq!(s, r#"{"a": [1, "é"], "b": {}}"#);
        let mut s = String::new();
        python_json(&serde_json::json!({"a": [1]}), Some(2), 0, &mut s);
        assert_eq!(s, "{\n  \"a\": [\n    1\n  ]\n}");
    }

    #[test]
    fn strftime_has_the_right_shape() {
        let s = strftime_now("%d %b %Y");
        assert_eq!(s.len(), 11, "{s}");
    }
}
