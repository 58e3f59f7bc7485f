"""bitsandbytes' quantization formats as readable reference functions, bit-exact against bitsandbytes 0.50.x on CPU.

- :mod:`.fourbit` -- NF4 / FP4: ``quantize_4bit``, ``dequantize_4bit``, ``QuantState`` (double quantization included)
- :mod:`.dynamic8` -- the dynamic 8-bit code and blockwise 8-bit quantization that double quantization uses
- :mod:`.int8` -- LLM.int8: row-wise int8 quantization, outlier decomposition, the int8 linear
- :mod:`.torch_float32` -- the float32 operation orders of torch's CPU kernels that the formats inherit
- :mod:`.config` -- ``BitsAndBytesConfig`` and transformers' rules for which linear layers are quantized
- :mod:`.weights` -- quantized weights as the models' linear op reads them; loading quantized checkpoints

Nothing here imports torch or bitsandbytes: tests/test_quant_*.py check every function against them.
"""

from .dynamic8 import create_dynamic_map, dequantize_blockwise, quantize_blockwise
from .fourbit import FP4_CODE, NF4_CODE, QuantState, dequantize_4bit, quantize_4bit

__all__ = ["FP4_CODE", "NF4_CODE", "QuantState", "create_dynamic_map", "dequantize_4bit", "dequantize_blockwise",
           "quantize_4bit", "quantize_blockwise"]
