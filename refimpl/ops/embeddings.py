"""Embedding tables: a row per id."""


def embedding(weight, ids):
    """weight[ids]: row ``ids[...]`` of the table.   weight [V, D], ids [...] integers in [0, V) -> [..., D].

    Ids are checked against V by the model classes before they get here (an id outside the table is an
    InputError there, never a wrapped-around or clipped lookup).
    """
    return weight[ids]
