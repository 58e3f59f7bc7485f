"""Fine-tune a tiny BertForSequenceClassification on a toy task generated here, with refimpl alone
(no torch): loss_and_grads, AdamW, the linear warm-up schedule, gradient clipping, dropout from a seeded
generator. The loss falls and the held-out accuracy rises.

    python examples/finetune_sequence_classification.py [--steps 150]

The task: a sequence of token ids is labelled 1 when it contains more ids from the upper half of the
vocabulary than from the lower half, else 0 (a counting task a one-layer attention model learns quickly).
"""

import argparse

import numpy as np

import refimpl


def toy_batch(rng, batch, length, vocab):
    """Ids in [1, vocab) (0 is padding), right-padded to ``length``; labels 1 where the upper half wins."""
    lengths = rng.integers(length // 2, length + 1, batch)
    ids = rng.integers(1, vocab, (batch, length))
    mask = (np.arange(length) < lengths[:, None]).astype(np.int64)
    ids *= mask
    upper = ((ids >= vocab // 2 + 1) & (mask == 1)).sum(axis=1)
    lower = ((ids < vocab // 2 + 1) & (mask == 1)).sum(axis=1)
    return ids, mask, (upper > lower).astype(np.int64)


def accuracy(model, ids, mask, labels):
    logits = model(input_ids=ids, attention_mask=mask).logits
    return float((logits.argmax(axis=-1) == labels).mean())


def main(steps=150, seed=0, verbose=True):
    vocab, length = 21, 12
    config = refimpl.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                intermediate_size=64, max_position_embeddings=length, num_labels=2,
                                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.0)
    model = refimpl.BertForSequenceClassification(config, seed=seed)
    rng, dropout_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    held_out = toy_batch(np.random.default_rng(seed + 2), 256, length, vocab)
    opt = refimpl.optim.AdamW(model, lr=3e-3, weight_decay=0.01)
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, num_warmup_steps=steps // 10, num_training_steps=steps)
    losses = []
    acc0 = accuracy(model, *held_out)
    for step in range(steps):
        ids, mask, labels = toy_batch(rng, 32, length, vocab)
        loss, grads = model.loss_and_grads(input_ids=ids, attention_mask=mask, labels=labels, train=True,
                                           rng=dropout_rng)
        refimpl.optim.clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        sched.step()
        losses.append(float(loss))
        if verbose and (step % 25 == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {np.mean(losses[-25:]):.4f}  lr {sched.get_last_lr()[0]:.2e}")
    acc = accuracy(model, *held_out)
    if verbose:
        print(f"held-out accuracy {acc0:.3f} -> {acc:.3f}")
    return losses, acc0, acc


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    main(ap.parse_args().steps, ap.parse_args().seed)
