"""The reference kernels: the textbook definition of every computation, one small file each.

Pure functions of arrays (the backend is taken from the inputs), a few lines each, the equation in the
docstring and the edge cases written down: no threads, no ``out=`` arguments, no layout choices. These
are what ``kernels="reference"`` runs and what every fast kernel (``refimpl.kernels``) is tested against.

| file            | what                                                                    |
|-----------------|-------------------------------------------------------------------------|
| linear.py       | x W^T + b                                                               |
| layer_norm.py   | LayerNorm over the last axis; add & norm                                 |
| softmax.py      | softmax, log-softmax                                                     |
| activations.py  | every ``hidden_act`` of transformers                                     |
| erf.py          | the error function (Cody's rational approximation, float64)             |
| embeddings.py   | table lookups                                                            |
| attention.py    | scaled dot-product attention, heads, relative-position terms            |
| masks.py        | additive attention masks (padding, causal), head masks                   |
| losses.py       | cross-entropy, MSE, BCE-with-logits                                      |
"""
