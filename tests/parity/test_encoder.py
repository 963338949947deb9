"""`stylerl embed` against sentence-transformers: the shipped MiniLM (BERT) and tiny random
RoBERTa / XLM-R sentence-transformers directories built here, across pooling modes."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import MINILM, write_jsonl

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

LONG = " ".join(
    f"Sentence number {i} rambles on about weather, trains, and the price of tea in 1987;" for i in range(40)
)

SENTENCES = [
    "Hello world.",
    "hi",
    "I can't believe it's already Friday!!!",
    "The quick brown fox jumps over the lazy dog.",
    "Well... that went about as well as expected, didn't it?",
    "Dear Sir or Madam, I am writing to complain about the noise.",
    "lol ok",
    "She sells sea-shells by the sea-shore (allegedly).",
    "Prices rose 3.5% in Q2 2023, according to the report.",
    "Email me at jane.doe@example.com or call +1-555-0100.",
    "Visit https://example.org/path?q=1&x=2 for details.",
    "Naïve café owners in Zürich serve crème brûlée.",
    "Привет, как дела?",
    "日本語の文章もちゃんと処理できますか。",
    "مرحبا بالعالم",
    "Emoji time 🎉🔥👍 — does it survive?",
    "   leading and trailing spaces   ",
    "TABS\tand\tmore\ttabs",
    "ALL CAPS SHOUTING IS RUDE",
    "\"Quoted,\" she said, 'and nested \"quotes\" too.'",
    "#hashtag @handle $money 100€ ¥500",
    "One. Two. Three. Four. Five.",
    "A semicolon; a colon: a dash — an ellipsis…",
    "The mitochondria is the powerhouse of the cell.",
    "If I were you, I wouldn't have done that; but then again, I'm not you.",
    "x",
    "1234567890",
    "Shakespeare wrote: To be, or not to be, that is the question.",
    "Thx 4 the gr8 time, c u l8r!",
    "The committee, having deliberated at length, resolved to postpone the vote indefinitely.",
    "Die Straße ist nass, weil es geregnet hat.",
    "¿Dónde está la biblioteca?",
    LONG,
]


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def stylerl_embed(stylerl, enc_dir, texts, tmp_path, *extra):
    inp = write_jsonl(tmp_path / "in.jsonl", texts)
    p = stylerl("embed", "--encoder", enc_dir, "--input", inp, *extra)
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    return np.array(rows, dtype=np.float64), p.stderr


def st_embed(enc_dir, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(enc_dir), device="cpu")
    return np.asarray(model.encode(texts, batch_size=32), dtype=np.float64)


def test_minilm_matches_sentence_transformers(stylerl, tmp_path):
    assert len(SENTENCES) >= 30
    ours, err = stylerl_embed(stylerl, MINILM, SENTENCES, tmp_path, "--batch-size", "8")
    ref = st_embed(MINILM, SENTENCES)
    assert ours.shape == ref.shape == (len(SENTENCES), 384)
    cos = cosines(ours, ref)
    print(f"MiniLM cosine min {cos.min():.8f} (1 - min = {1 - cos.min():.1e})")
    bad = [(s[:40], c) for s, c in zip(SENTENCES, cos) if c < 0.9999]
    assert not bad, bad
    # The directory has a Normalize module: unit vectors.
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert "1 of 33 inputs were longer than max_seq_length 256" in err


def test_plain_text_lines_and_json_lines_agree(stylerl, tmp_path):
    texts = ["plain line one", "\"a JSON string\"", "{\"not\": \"a string\"}", "[1, 2]"]
    plain = tmp_path / "plain.txt"
    plain.write_text("\n".join(texts) + "\n", encoding="utf-8")
    p = stylerl("embed", "--encoder", MINILM, "--input", plain)
    ours = np.array([json.loads(line) for line in p.stdout.splitlines()])
    # Only a JSON string literal is unquoted; other JSON stays as raw text.
    expect = ["plain line one", "a JSON string", "{\"not\": \"a string\"}", "[1, 2]"]
    ref = st_embed(MINILM, expect)
    assert ours.shape == ref.shape
    assert cosines(ours, ref).min() >= 0.9999


# ---------- tiny random RoBERTa / XLM-R sentence-transformers directories ----------

MAXLEN = 48
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(model_type):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    corpus = SENTENCES * 2 + ["the and of to in is was for on with as by at from"] * 5
    if model_type == "roberta":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=500, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
        tok.train_from_iterator(corpus, trainer)
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    else:  # XLM-R style: SentencePiece-like unigram over metaspace pieces
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIALS, unk_token="<unk>")
        tok.train_from_iterator(corpus, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
    assert [tok.token_to_id(t) for t in SPECIALS] == [0, 1, 2, 3, 4]
    return tok


def build_tiny(root, model_type):
    import torch
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    tok = train_tokenizer(model_type)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        cls_token="<s>", sep_token="</s>", mask_token="<mask>", model_max_length=MAXLEN,
    )
    kw = dict(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=MAXLEN + 2, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, type_vocab_size=1, layer_norm_eps=1e-5,
    )
    torch.manual_seed(0 if model_type == "roberta" else 1)
    if model_type == "roberta":
        model = RobertaModel(RobertaConfig(**kw), add_pooling_layer=False)
    else:
        # A task model: its weights carry the `roberta.` prefix, which the loader must strip.
        model = XLMRobertaForMaskedLM(XLMRobertaConfig(**kw))
    with torch.no_grad():
        # Every weight random, so a swapped or ignored tensor shows in the output.
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.15)
    model.save_pretrained(root)
    fast.save_pretrained(root)
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": MAXLEN, "do_lower_case": False}))
    return root


def write_st_modules(d, pooling_cfg, normalize):
    mods = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        mods.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (d / "2_Normalize").mkdir(exist_ok=True)
    (d / "modules.json").write_text(json.dumps(mods))
    (d / "1_Pooling").mkdir(exist_ok=True)
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **pooling_cfg}))


@pytest.fixture(scope="module")
def tiny_bases(tmp_path_factory):
    out = {}
    for mt in ("roberta", "xlm-roberta"):
        out[mt] = build_tiny(tmp_path_factory.mktemp(mt.replace("-", "_")), mt)
    return out


def legacy(*on):
    keys = ["cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens"]
    return {f"pooling_mode_{k}": k in on for k in keys}


CASES = [
    ("roberta", legacy("mean_tokens"), False),
    ("roberta", {"pooling_mode": "cls"}, False),
    ("roberta", legacy("max_tokens"), True),
    ("roberta", {"pooling_mode": "mean_sqrt_len_tokens"}, False),
    ("roberta", legacy("cls_token", "mean_tokens"), False),
    ("roberta", {"pooling_mode": "weightedmean"}, False),
    ("roberta", {"pooling_mode": "lasttoken"}, False),
    ("xlm-roberta", legacy("mean_tokens"), False),
    ("xlm-roberta", {"pooling_mode": ["max", "mean"]}, True),
]


@pytest.mark.parametrize("model_type,pooling_cfg,normalize", CASES)
def test_tiny_random_encoder_matches(stylerl, tiny_bases, tmp_path, model_type, pooling_cfg, normalize):
    d = tmp_path / "enc"
    shutil.copytree(tiny_bases[model_type], d)
    write_st_modules(d, pooling_cfg, normalize)
    # Small batches so short and long inputs are padded together in some of them.
    ours, err = stylerl_embed(stylerl, d, SENTENCES, tmp_path, "--batch-size", "5")
    ref = st_embed(d, SENTENCES)
    assert ours.shape == ref.shape
    cos = cosines(ours, ref)
    print(f"{model_type} {pooling_cfg} cosine min {cos.min():.8f} (1 - min = {1 - cos.min():.1e})")
    assert cos.min() >= 0.9999, [(s[:30], c) for s, c in zip(SENTENCES, cos) if c < 0.9999]
    # Cosine ignores scale: the norms must agree too (and be 1 only with Normalize).
    ratio = np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.abs(ratio - 1).max() < 1e-3
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5) == normalize
    assert f"inputs were longer than max_seq_length {MAXLEN}" in err


def test_dense_module_is_refused(stylerl, tiny_bases, tmp_path):
    d = tmp_path / "enc"
    shutil.copytree(tiny_bases["roberta"], d)
    write_st_modules(d, legacy("mean_tokens"), False)
    mods = json.loads((d / "modules.json").read_text())
    mods.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (d / "modules.json").write_text(json.dumps(mods))
    inp = write_jsonl(tmp_path / "in.jsonl", ["hi"])
    p = stylerl("embed", "--encoder", d, "--input", inp, check=False)
    assert p.returncode == 1
    assert "Dense modules are not supported" in p.stderr and len(p.stderr.strip().splitlines()) == 1
