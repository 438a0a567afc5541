import shutil

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A randomly initialised 2-layer, 32-wide BERT with MiniLM's uncased tokenizer (fast tests of
    the 'any local model folder' path)."""
    from transformers import BertConfig, BertModel

    from reprozoo.tvqvae.embeddings import default_model_path

    src = default_model_path()
    path = tmp_path_factory.mktemp("tiny_bert")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(f"{src}/{name}", path / name)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(path)
    return str(path)
