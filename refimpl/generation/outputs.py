"""What ``generate(..., return_dict_in_generate=True)`` returns, with transformers' field names, and the
beam trace: per-step arrays another beam-search implementation can be checked against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..outputs import ModelOutput


@dataclass
class GenerateOutput(ModelOutput):
    """sequences [R, C] host int64 (R = batch * num_return_sequences; the prompt / decoder start included);
    sequences_scores [R] float32 (beam search with output_scores: the length-penalised sum of the
    processed log-probabilities); scores: per step, processed scores [rows, V] (log-probabilities in beam
    search); logits: per step, raw logits [rows, V]; beam_indices [R, generated] (beam search: the flat row
    each generated token came from, -1 after the end); beam_trace: a dict of per-step arrays (see BeamTrace).

    With output_attentions / output_hidden_states, transformers' fields (one entry per decoder call, each
    the model's output of that call for every row R, before the beams are reordered; S = the tokens fed
    in that call (the prompt first, then 1; without a cache the whole sequence), T = the keys attended):
    decoder-only: ``attentions`` (per step, L arrays [R, N, S, T]), ``hidden_states`` (per step, L + 1
    arrays [R, S, D]); encoder-decoder: ``encoder_attentions`` (L arrays [B, N, E, E], the encoder run once,
    not repeated per beam), ``encoder_hidden_states`` (L + 1 arrays [B, E, D]), ``decoder_attentions``,
    ``cross_attentions`` (per step, L arrays [R, N, S, E]), ``decoder_hidden_states``.
    """

    sequences: Any = None
    sequences_scores: Any = None
    scores: Optional[tuple] = None
    logits: Optional[tuple] = None
    beam_indices: Any = None
    attentions: Optional[tuple] = None
    hidden_states: Optional[tuple] = None
    encoder_attentions: Optional[tuple] = None
    encoder_hidden_states: Optional[tuple] = None
    decoder_attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None
    decoder_hidden_states: Optional[tuple] = None
    beam_trace: Optional[dict] = None
    decoder_calls: Optional[int] = None  # decoder forward calls made (one per step)


class BeamTrace:
    """Beam search, step by step (B inputs, K beams, 2K candidates; every array stacked over steps first):

    | key | shape | meaning |
    |---|---|---|
    | step | [steps] | generated tokens before this step |
    | cand_tokens | [steps, B, 2K] | candidate next tokens, best accumulated score first |
    | cand_beams | [steps, B, 2K] | the beam (0..K-1) each candidate extends |
    | cand_scores | [steps, B, 2K] | accumulated log-probability of each candidate (float32) |
    | cand_finished | [steps, B, 2K] | the candidate ends in eos or reaches max_length |
    | chosen | [steps, B, K] | which candidates (0..2K-1) continue as the new beams |
    | running_scores | [steps, B, K] | scores of the new beams (-1e9 added to finished candidates) |
    | hyp_scores | [steps, B, K] | the best finished hypotheses so far, length-penalised (-1e9: empty slot) |
    | hyp_finished | [steps, B, K] | whether each hypothesis slot holds a finished sequence |
    """

    def __init__(self):
        self.rows = {}

    @classmethod
    def empty(cls):
        return cls()

    def add(self, **arrays):
        for k, v in arrays.items():
            self.rows.setdefault(k, []).append(np.array(v, copy=True))

    def stacked(self) -> dict:
        return {k: np.stack(v) for k, v in self.rows.items()}
