//! An Ollama Modelfile for an exported GGUF: FROM, ADAPTER, the chat template in Ollama's Go
//! template form, the default system message, and stop tokens for the end of a turn.
//!
//! Two template styles are translated, ChatML (`<|im_start|>`, SmolLM2, Qwen) and Llama 3
//! (`<|start_header_id|>`); any other template is left out with a comment, and Ollama then
//! reads `tokenizer.chat_template` from the GGUF itself.

/// The chat template families that have a Go-template translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    ChatMl,
    Llama3,
}

pub fn style_of(template: &str) -> Option<Style> {
    if template.contains("<|im_start|>") {
        Some(Style::ChatMl)
    } else if template.contains("<|start_header_id|>") {
        Some(Style::Llama3)
    } else {
        None
    }
}

/// The system message a ChatML template inserts when the conversation has none (SmolLM2's
/// "You are a helpful AI assistant named SmolLM…"), read from the Jinja source.
pub fn default_system(template: &str) -> Option<String> {
    let re = regex::Regex::new(r"<\|im_start\|>system(?:\\n|\n)([^'<]*?)<\|im_end\|>").ok()?;
    re.captures(template)
        .map(|c| c[1].to_string())
        .filter(|s| !s.is_empty())
}

const CHATML: &str = r#"{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}{{ end }}<|im_start|>assistant
"#;

const LLAMA3: &str = r#"{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range .Messages }}{{ if ne .Role "system" }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>

"#;

/// What goes into the Modelfile.
pub struct ModelfileSpec<'a> {
    /// FROM: the base GGUF (relative to the Modelfile).
    pub from: &'a str,
    /// ADAPTER: the LoRA GGUF, for an adapter export.
    pub adapter: Option<&'a str>,
    /// The model's Jinja chat template.
    pub chat_template: Option<&'a str>,
    /// The system message to default to (a run's training system message), overriding the
    /// template's own default.
    pub system: Option<&'a str>,
    /// Tokens that end generation besides the style's own (the eos token).
    pub extra_stops: Vec<String>,
    /// Comment lines written at the top (how the FROM file is made, say).
    pub notes: Vec<String>,
}

/// The first line of every Modelfile this module writes (how a hand-written one is told apart).
pub const HEADER: &str =
    "# Ollama Modelfile written by `stylerl export-gguf`: ollama create NAME -f Modelfile";

/// Refuses text that would break out of its Modelfile line: a newline or other control
/// character in a one-line field (FROM, ADAPTER, a comment, a stop), or `"""` in the
/// triple-quoted SYSTEM message. `what` names the field for the message.
pub fn check_line(what: &str, text: &str) -> anyhow::Result<()> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        anyhow::bail!(
            "{what} {text:?} holds the control character {c:?}: it would start a new line in the Ollama Modelfile; use a name without it"
        );
    }
    Ok(())
}

/// Checks every field of `spec` with [`check_line`] (SYSTEM may span lines but not hold `"""`).
pub fn check_spec(spec: &ModelfileSpec) -> anyhow::Result<()> {
    check_line("the Modelfile's FROM", spec.from)?;
    if let Some(a) = spec.adapter {
        check_line("the Modelfile's ADAPTER", a)?;
    }
    for n in &spec.notes {
        check_line("a Modelfile comment", n)?;
    }
    for s in &spec.extra_stops {
        check_line("a Modelfile stop", s)?;
    }
    if let Some(s) = spec.system.filter(|s| s.contains("\"\"\"")) {
        anyhow::bail!(
            "the system message {s:?} holds \"\"\", which would end the Modelfile's SYSTEM block: remove it"
        );
    }
    Ok(())
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn modelfile(spec: &ModelfileSpec) -> String {
    let mut out = format!("{HEADER}\n");
    for n in &spec.notes {
        out.push_str(&format!("# {n}\n"));
    }
    out.push_str(&format!("FROM {}\n", spec.from));
    if let Some(a) = spec.adapter {
        out.push_str(&format!("ADAPTER {a}\n"));
    }
    let style = spec.chat_template.and_then(style_of);
    let mut stops: Vec<String> = match style {
        Some(Style::ChatMl) => vec!["<|im_start|>".into(), "<|im_end|>".into()],
        Some(Style::Llama3) => vec![
            "<|start_header_id|>".into(),
            "<|end_header_id|>".into(),
            "<|eot_id|>".into(),
        ],
        None => vec![],
    };
    for s in &spec.extra_stops {
        if !stops.contains(s) {
            stops.push(s.clone());
        }
    }
    match style {
        Some(s) => {
            let t = if s == Style::ChatMl { CHATML } else { LLAMA3 };
            out.push_str(&format!("TEMPLATE \"\"\"{t}\"\"\"\n"));
        }
        None => out.push_str("# chat template not translated (neither ChatML nor Llama 3): Ollama uses the GGUF's tokenizer.chat_template\n"),
    }
    let system = spec
        .system
        .map(str::to_string)
        .or_else(|| spec.chat_template.and_then(default_system));
    if let Some(s) = system {
        out.push_str(&format!("SYSTEM \"\"\"{s}\"\"\"\n"));
    }
    for s in stops {
        out.push_str(&format!("PARAMETER stop {}\n", quoted(&s)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chatml_with_default_system_and_adapter() {
        let m = modelfile(&ModelfileSpec {
            from: "./base.gguf",
            adapter: Some("./adapter.gguf"),
            chat_template: Some(SMOL),
            system: None,
            extra_stops: vec!["<|im_end|>".into(), "<|endoftext|>".into()],
            notes: vec![],
        });
        assert!(
            m.contains("\nFROM ./base.gguf\nADAPTER ./adapter.gguf\n"),
            "{m}"
        );
        assert!(
            m.contains("TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n"),
            "{m}"
        );
        assert!(m.contains("SYSTEM \"\"\"You are a helpful AI assistant named SmolLM, trained by Hugging Face\"\"\""), "{m}");
        assert_eq!(m.matches("PARAMETER stop \"<|im_end|>\"").count(), 1, "{m}");
        assert!(m.contains("PARAMETER stop \"<|endoftext|>\""), "{m}");
    }

    #[test]
    fn llama3_and_unknown_styles() {
        let l3 = "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}";
        let m = modelfile(&ModelfileSpec {
            from: "m.gguf",
            adapter: None,
            chat_template: Some(l3),
            system: Some("Rewrite in style."),
            extra_stops: vec![],
            notes: vec!["note".into()],
        });
        assert!(m.contains("# note\nFROM m.gguf\nTEMPLATE"), "{m}");
        assert!(m.contains("PARAMETER stop \"<|eot_id|>\""), "{m}");
        assert!(m.contains("SYSTEM \"\"\"Rewrite in style.\"\"\""), "{m}");
        assert!(!m.contains("ADAPTER"));
        let other = modelfile(&ModelfileSpec {
            from: "m.gguf",
            adapter: None,
            chat_template: Some("[INST] {{ x }} [/INST]"),
            system: None,
            extra_stops: vec![],
            notes: vec![],
        });
        assert!(
            !other.contains("TEMPLATE") && other.contains("not translated"),
            "{other}"
        );
    }
}
