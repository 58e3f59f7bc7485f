"""Sequence generation: KV-cached greedy search, sampling and beam search, as transformers 4.57.6 does them.

    seqs = model.generate(input_ids, num_beams=4, max_new_tokens=32)      # EncoderDecoderModel
    out = decoder.generate(prompt, do_sample=True, top_p=0.9, seed=0, return_dict_in_generate=True)
"""

from .config import GenerationConfig, load_generation_config, resolve_generation_config
from .outputs import BeamTrace, GenerateOutput
from .utils import generate

__all__ = ["GenerationConfig", "GenerateOutput", "BeamTrace", "generate", "load_generation_config",
           "resolve_generation_config"]
