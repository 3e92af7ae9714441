"""``lb.balance.base.OrderedTree`` (compiled in CI) against a sorted-list model: the
first entry is always the lowest key, equal keys in insertion order, through any
mix of inserts, re-inserts, removals from anywhere, and pop/restore walks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lb.balance.base import NodeData, OrderedTree

OPS = st.lists(st.tuples(st.sampled_from(["insert", "remove", "walk", "move"]),
                         st.integers(0, 11), st.integers(-3, 6)), max_size=120)


def _order(model: dict[int, tuple[int, int]]) -> list[int]:
    return [i for i, _ in sorted(model.items(), key=lambda kv: kv[1])]


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_tree_order_matches_a_sorted_model(ops: list[tuple[str, int, int]]) -> None:
    trees = [OrderedTree(), OrderedTree()]
    nodes = [NodeData(f"s{i}", i) for i in range(12)]
    models: list[dict[int, tuple[int, int]]] = [{}, {}]  # node index -> (key, seq)
    for op, i, key in ops:
        d = nodes[i]
        t = 0 if i % 2 == 0 or op == "move" else 1
        tree, model = trees[t], models[t]
        if op in ("insert", "move"):
            for om in models:  # insert takes the node out of the tree it is in
                om.pop(i, None)
            tree.insert(key, d)
            model[i] = (key, d.seq)
        elif op == "remove":
            tree.remove(d)  # a node of another tree, or of none, is left alone
            if d.tree is None:
                model.pop(i, None)
        else:  # a pick's walk: pop the first ones, then put them back
            popped = []
            for _ in range(key % 4 + 1):
                n = tree.pop_first()
                if n is None:
                    break
                assert n.tree is None
                popped.append(n)
            assert [n.idx for n in popped] == _order(model)[:len(popped)]
            for n in popped:
                tree.restore(n)
        for tr, m in zip(trees, models, strict=True):
            assert len(tr) == len(m)
            first = tr.first()
            want = _order(m)
            assert (first.idx if first is not None else None) == (want[0] if want else None)
            for n in nodes:
                assert (n.tree is tr) == (n.idx in m)
    # drained in order
    for tr, m in zip(trees, models, strict=True):
        drained = []
        while (n := tr.pop_first()) is not None:
            drained.append(n.idx)
        assert drained == _order(m)
