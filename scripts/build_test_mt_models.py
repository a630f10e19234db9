#!/usr/bin/env python3
"""Builds the small CTranslate2 translation models the test suite runs on.

No neural translation weights can be downloaded on our build machines, so the tests run on
models built here, in the three layouts Dragoman loads from the Hugging Face hub:

- ``nllb-echo``: NLLB-200 layout (``sentencepiece.bpe.model``, a shared vocabulary holding
  FLORES-200 language tokens such as ``eng_Latn``; source ``[src_lang] pieces </s>``, target
  prefix ``[tgt_lang]``, decoding starts from ``</s>``).
- ``m2m100-echo``: M2M100 layout (``__en__``-style language tokens, otherwise as NLLB).
- ``opus-mt-en-es-echo``: OPUS-MT / Marian layout (``source.spm`` and ``target.spm``, no
  language tokens, separate source and target vocabularies that are ordered differently).

Each is a real one-layer Transformer (``TransformerSpec``, saved by the ``ctranslate2`` package's
own model-spec API) with a SentencePiece model trained here on a few sentences (with byte
fallback, so any UTF-8 text tokenises). Its weights are set, not trained, so that the model
copies its input: the decoder's cross-attention looks at the source position equal to its own
step (learned one-hot position encodings, a sharp query/key product) and the output projection
reads back the token found there. Decoding step *t* therefore emits source token *t*: the
source language token is replaced by the forced target prefix, and every piece after it comes
back in order until ``</s>``. So a test can check, token for token, that the engine built the
source sequence and the target prefix the way the model family needs, and that SentencePiece
encoding and decoding round-trip, which a random-weight model could not show.

Usage: build_test_mt_models.py OUTPUT_DIR   (needs numpy, sentencepiece, ctranslate2)
"""

import io
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import sentencepiece as spm
from ctranslate2.specs import transformer_spec

# Written for these tests: phone-call phrases in the languages the tests use.
CORPUS = """\
Thank you for calling. Please hold while we connect you to the next available agent.
Your call is important to us. All of our representatives are busy at the moment.
Please enter your account number followed by the pound key.
I would like to check the status of my order, it was placed last Tuesday.
Can you spell your last name for me, please? Of course, it is Smith.
The meeting has been moved to three o'clock in the afternoon.
Press one for sales, two for support, or stay on the line for an operator.
Gracias por llamar. Por favor espere mientras le conectamos con un agente.
Su llamada es importante para nosotros. Todos nuestros agentes están ocupados.
Por favor introduzca su número de cuenta seguido de la tecla almohadilla.
Quisiera saber el estado de mi pedido, lo hice el martes pasado.
Merci de votre appel. Veuillez patienter, nous vous mettons en relation.
Votre appel est important pour nous. Tous nos conseillers sont occupés.
Vielen Dank für Ihren Anruf. Bitte warten Sie, Sie werden verbunden.
Obrigado por ligar. Por favor aguarde enquanto transferimos a sua chamada.
"""

NLLB_LANGUAGES = ["eng_Latn", "spa_Latn", "fra_Latn", "deu_Latn", "por_Latn", "rus_Cyrl", "zho_Hans"]
M2M100_LANGUAGES = ["__en__", "__es__", "__fr__", "__de__", "__pt__", "__ru__", "__zh__"]
MAX_POSITIONS = 512
COPY_SHARPNESS = 10.0
OUTPUT_SCALE = 10.0


def train_sentencepiece(workdir, name, text):
    corpus = os.path.join(workdir, name + ".txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(text)
    prefix = os.path.join(workdir, name)
    spm.SentencePieceTrainer.train(
        input=corpus,
        model_prefix=prefix,
        model_type="unigram",
        vocab_size=400,
        hard_vocab_limit=False,
        byte_fallback=True,
        character_coverage=1.0,
        seed_sentencepiece_size=10000,
        num_threads=1,
        minloglevel=2,
    )
    return prefix + ".model"


def pieces(model_path):
    processor = spm.SentencePieceProcessor(model_file=model_path)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def layer_norm(spec, dim):
    spec.gamma = np.ones(dim, dtype=np.float32)
    spec.beta = np.zeros(dim, dtype=np.float32)


def linear(spec, out_dim, in_dim, weight=None):
    spec.weight = np.zeros((out_dim, in_dim), dtype=np.float32) if weight is None else weight
    spec.bias = np.zeros(out_dim, dtype=np.float32)


def echo_spec(source_vocab, target_vocab, decoder_start):
    """A one-layer Transformer whose output at step t is source token t (see the module doc).

    Hidden layout: [one dimension per source token | one dimension per position]."""
    v, p = len(source_vocab), MAX_POSITIONS
    d = v + p
    ffn = 8
    spec = transformer_spec.TransformerSpec.from_config(1, 1, pre_norm=True)

    positions = np.zeros((p, d), dtype=np.float32)
    positions[np.arange(p), v + np.arange(p)] = 1.0

    encoder = spec.encoder
    encoder.scale_embeddings = False
    embeddings = np.zeros((v, d), dtype=np.float32)
    embeddings[np.arange(v), np.arange(v)] = 1.0
    encoder.embeddings[0].weight = embeddings
    encoder.position_encodings.encodings = positions
    layer_norm(encoder.layer_norm, d)
    for layer in encoder.layer:
        layer_norm(layer.self_attention.layer_norm, d)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        layer_norm(layer.ffn.layer_norm, d)
        linear(layer.ffn.linear_0, ffn, d)
        linear(layer.ffn.linear_1, d, ffn)

    decoder = spec.decoder
    decoder.scale_embeddings = False
    # The decoder's own input tokens carry nothing: only its position matters.
    decoder.embeddings.weight = np.zeros((len(target_vocab), d), dtype=np.float32)
    decoder.position_encodings.encodings = positions
    layer_norm(decoder.layer_norm, d)
    # Output: target token j reads the dimension of the source token with the same text.
    source_index = {token: i for i, token in enumerate(source_vocab)}
    projection = np.zeros((len(target_vocab), d), dtype=np.float32)
    for j, token in enumerate(target_vocab):
        if token in source_index:
            projection[j, source_index[token]] = OUTPUT_SCALE
    linear(decoder.projection, len(target_vocab), d, projection)
    for layer in decoder.layer:
        layer_norm(layer.self_attention.layer_norm, d)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        # Cross-attention: query = own position, key = source position, value = source token.
        layer_norm(layer.attention.layer_norm, d)
        query = np.zeros((d, d), dtype=np.float32)
        query[v + np.arange(p), v + np.arange(p)] = COPY_SHARPNESS
        linear(layer.attention.linear[0], d, d, query)
        key_value = np.zeros((2 * d, d), dtype=np.float32)
        key_value[v + np.arange(p), v + np.arange(p)] = 1.0  # keys: positions
        key_value[d + np.arange(v), np.arange(v)] = 1.0  # values: tokens
        linear(layer.attention.linear[1], 2 * d, d, key_value)
        output = np.zeros((d, d), dtype=np.float32)
        output[np.arange(v), np.arange(v)] = 1.0
        linear(layer.attention.linear[2], d, d, output)
        layer_norm(layer.ffn.layer_norm, d)
        linear(layer.ffn.linear_0, ffn, d)
        linear(layer.ffn.linear_1, d, ffn)

    spec.register_source_vocabulary(source_vocab)
    spec.register_target_vocabulary(target_vocab)
    spec.config.decoder_start_token = decoder_start
    return spec


def save(spec, out_dir, files):
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    spec.validate()
    spec.optimize(quantization=None)
    spec.save(tmp)
    for name, source in files.items():
        shutil.copyfile(source, os.path.join(tmp, name))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        shared_model = train_sentencepiece(work, "shared", CORPUS)
        # SentencePiece's own control pieces are <unk>, <s>, </s>; CTranslate2 also wants <pad>.
        shared = pieces(shared_model)
        base = shared + ["<pad>"]

        nllb = base + NLLB_LANGUAGES
        save(echo_spec(nllb, nllb, "</s>"), os.path.join(out, "nllb-echo"),
             {"sentencepiece.bpe.model": shared_model})

        m2m = base + M2M100_LANGUAGES
        save(echo_spec(m2m, m2m, "</s>"), os.path.join(out, "m2m100-echo"),
             {"sentencepiece.bpe.model": shared_model})

        # Marian: one SentencePiece model per side, and a target vocabulary in another order,
        # so an engine that mixed up the two vocabularies would not get the text back.
        source_vocab = base
        target_vocab = base[:3] + list(reversed(base[3:]))
        save(echo_spec(source_vocab, target_vocab, "<pad>"), os.path.join(out, "opus-mt-en-es-echo"),
             {"source.spm": shared_model, "target.spm": shared_model})

    with open(os.path.join(out, "README"), "w", encoding="utf-8") as f:
        f.write("Built by scripts/build_test_mt_models.py for the test suite: echo models, not translators.\n")
    print("test translation models built in %s" % out)


if __name__ == "__main__":
    main()
