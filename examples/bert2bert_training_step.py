"""The seeds' bert2bert training step in refimpl: BertGeneration encoder and decoder warm-started from one
BERT checkpoint, the loss of ``decoder_input_ids=labels, labels=labels``, its gradients, an AdamW step.

    python examples/bert2bert_training_step.py [BERT_DIR]     # default: weights/bert_mlm (tiny, committed)

transformers' version of the same lines (the seeds):

    encoder = BertGenerationEncoder.from_pretrained(dir, bos_token_id=101, eos_token_id=102)
    decoder = BertGenerationDecoder.from_pretrained(dir, add_cross_attention=True, is_decoder=True, ...)
    bert2bert = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    loss = bert2bert(input_ids=input_ids, decoder_input_ids=labels, labels=labels).loss
    loss.backward()
"""

import sys
from pathlib import Path

import numpy as np

import refimpl


def main(path):
    encoder = refimpl.BertGenerationEncoder.from_pretrained(path, bos_token_id=1, eos_token_id=2)
    decoder = refimpl.BertGenerationDecoder.from_pretrained(path, add_cross_attention=True, is_decoder=True,
                                                            bos_token_id=1, eos_token_id=2)
    bert2bert = refimpl.EncoderDecoderModel(encoder=encoder, decoder=decoder)
    rng = np.random.default_rng(0)
    vocab = encoder.config.vocab_size
    input_ids = rng.integers(3, vocab, (2, 12))
    labels = rng.integers(3, vocab, (2, 8))

    opt = refimpl.optim.AdamW(bert2bert, lr=1e-3)
    for step in range(5):
        loss, grads = bert2bert.loss_and_grads(input_ids=input_ids, decoder_input_ids=labels, labels=labels)
        norm = refimpl.optim.clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        print(f"step {step}: loss {float(loss):.4f}, gradient norm {norm:.3f}, {len(grads)} parameters")
    return float(loss)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "weights" / "bert_mlm")
