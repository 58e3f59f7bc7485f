"""Embedding tables: a row per id."""


def embedding(weight, ids):
    """weight[ids]: row ``ids[...]`` of the table.   weight [V, D], ids [...] integers in [0, V) -> [..., D].

    Ids are checked against V by the model classes before they get here (an id outside the table is an
    InputError there, never a wrapped-around or clipped lookup).
    """
    return weight[ids]


def embedding_backward(dy, ids, num_embeddings, padding_idx=None):
    """Gradient of weight[ids]: a scatter-add of the output gradients into the table's rows.

        dW[v] = sum over positions j with ids[j] == v of dy[j]          dy [..., D], ids [...] -> [V, D]

    ``padding_idx`` (nn.Embedding's): that row's gradient is 0, whatever looked it up (torch never updates
    the padding vector through the lookup). Other uses of the same table (a tied LM head) add their own
    gradient to that row elsewhere.
    """
    from ..backend import array_module

    xp = array_module(dy)
    d = dy.shape[-1]
    dw = xp.zeros((num_embeddings, d), dtype=dy.dtype)
    xp.add.at(dw, ids.reshape(-1), dy.reshape(-1, d))
    if padding_idx is not None and 0 <= padding_idx < num_embeddings:
        dw[padding_idx] = 0
    return dw
