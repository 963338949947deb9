//! Command-line entry: one subcommand a stage, one file a command. This is the only part of
//! the crate that parses flags and prints results; the library returns values and reports
//! progress through [`crate::report::Report`]. This file routes and reports errors.
pub mod analyze;
pub mod args;
pub mod console;
pub mod embed;
pub mod evaluate;
pub mod export_gguf;
pub mod generate;
pub mod grpo;
pub mod import_gguf;
pub mod logits;
pub mod merge;
pub mod perplexity;
pub mod plot;
pub mod prompts;
pub mod review;
pub mod review_agree;
pub mod review_io;
pub mod reward;
pub mod rewrite;
pub mod sft;
pub mod tokenize;
pub mod train_style;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stylerl",
    version,
    about = "Rewrite text in a person's style without collapsing it: SFT warm-up, Dr.GRPO with style reward dropout, Bit-LoRA."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Convert a llama.cpp GGUF file into a Hugging Face model directory.
    ImportGguf(import_gguf::ImportArgs),
    /// Export a model (adapters folded in) or an adapter alone as GGUF for llama.cpp, with an Ollama Modelfile.
    ExportGguf(export_gguf::ExportArgs),
    /// Tokenize text with a model directory's tokenizer.json (ids as JSON lines).
    Tokenize(tokenize::TokenizeArgs),
    /// Generate text with a Llama, Qwen2, Qwen3 or GPT-2 model (batched, KV cache).
    Generate(generate::GenerateArgs),
    /// Per-line perplexity of a text file under a model.
    Perplexity(perplexity::PerplexityArgs),
    /// Dump the logits of prompts (for parity checks against transformers).
    Logits(logits::LogitsArgs),
    /// Sentence embeddings with a sentence-transformers directory or `stylometric`.
    Embed(embed::EmbedArgs),
    /// Fold LoRA adapters into a model and write a merged Hugging Face directory.
    Merge(merge::MergeArgs),
    /// Stage 1: LoRA warm-up on (input, rewrite) pairs.
    Sft(sft::SftArgs),
    /// Stage 2: Dr.GRPO with style rewards (and style reward dropout); --bitlora for ternary adapters.
    Grpo(grpo::GrpoArgs),
    /// Your own style in one command: warm-up (reused), GRPO against your reference, evaluation.
    TrainStyle(train_style::TrainStyleArgs),
    /// Score one rewrite against a reference: every reward component, per sentence.
    Reward(reward::RewardArgs),
    /// Encoder characterisation table (within-document and across-corpus similarity).
    Analyze(analyze::AnalyzeArgs),
    /// Rewrite your own text with a trained run, prompted exactly as in training.
    Rewrite(rewrite::RewriteArgs),
    /// Rewrite held-out inputs with each system and compare them in tables.
    Evaluate(evaluate::EvaluateArgs),
    /// Blind A/B review of two systems: `review make` writes the sheet and key, `review score` scores verdicts.
    Review(review::ReviewArgs),
    /// Draw a run's training metrics (metrics.jsonl) as an SVG grid of charts.
    Plot(plot::PlotArgs),
    /// Show the build: libtorch, CUDA availability, threads.
    Info,
}

/// Runs the CLI and returns the process exit code. Errors print as one line.
pub fn main() -> i32 {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STYLERL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match env_threads().and_then(|()| run(cli.command)) {
        Ok(()) => 0,
        Err(e) => {
            // One line: outermost context first, causes after it (a cause's own line breaks,
            // such as a regex error's caret lines, are folded into spaces).
            let chain: Vec<String> = e
                .chain()
                .map(|c| {
                    c.to_string()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            eprintln!("error: {}", chain.join(": "));
            // 128 + signal: stopped by Ctrl-C / SIGTERM at a step boundary (the shell's convention).
            if let Some(i) = e.downcast_ref::<crate::util::Interrupted>() {
                return 128 + i.signal;
            }
            // 2: the machine cannot do what was asked (no CUDA); 1: anything else.
            if e.chain().any(|c| c.is::<crate::util::NoCuda>()) {
                2
            } else {
                1
            }
        }
    }
}

/// STYLERL_THREADS: libtorch's intra-op threads (on a busy machine fewer threads avoid
/// OpenMP spin contention); a value that is not a count in range is refused.
fn env_threads() -> anyhow::Result<()> {
    let v = std::env::var("STYLERL_THREADS").unwrap_or_default();
    if v.trim().is_empty() {
        return Ok(());
    }
    let n: i64 = v.trim().parse().map_err(|_| {
        anyhow::anyhow!("STYLERL_THREADS = {v:?}: must be a whole number of threads")
    })?;
    crate::config::check::threads("STYLERL_THREADS", n)?;
    tch::set_num_threads(n as i32);
    Ok(())
}

fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::ImportGguf(a) => import_gguf::run(&a),
        Command::ExportGguf(a) => export_gguf::run(&a),
        Command::Tokenize(a) => tokenize::tokenize(&a),
        Command::Generate(a) => generate::generate(&a),
        Command::Perplexity(a) => perplexity::perplexity(&a),
        Command::Logits(a) => logits::logits(&a),
        Command::Embed(a) => embed::embed(&a),
        Command::Merge(a) => merge::run(&a),
        Command::Sft(a) => sft::run(&a),
        Command::Grpo(a) => grpo::run(&a),
        Command::Reward(a) => reward::reward(&a),
        Command::Analyze(a) => analyze::analyze(&a),
        Command::Review(a) => review::run(&a),
        Command::TrainStyle(a) => train_style::run(&a),
        Command::Rewrite(a) => rewrite::run(&a),
        Command::Evaluate(a) => evaluate::run(&a),
        Command::Plot(a) => plot::run(&a),
        Command::Info => {
            println!("stylerl {}", env!("CARGO_PKG_VERSION"));
            println!("cuda available: {}", tch::Cuda::is_available());
            println!("cuda devices: {}", tch::Cuda::device_count());
            println!("cudnn available: {}", tch::Cuda::cudnn_is_available());
            println!("threads: {}", tch::get_num_threads());
            Ok(())
        }
    }
}
