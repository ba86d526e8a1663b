"""Ops compute what the layers they describe compute, predict their shapes, and invert exactly."""

from __future__ import annotations

import numpy as np
import pytest

from converter.tables.ops import (
    DropRows,
    Flatten,
    MergeHeadsIn,
    MergeHeadsOut,
    OpShapeError,
    PrependRows,
    Transpose,
    build_op,
    chain_apply,
    chain_inverse,
    chain_shape,
)

RNG = np.random.default_rng(0)


def test_merge_heads_in_computes_what_the_einsum_dense_computes():
    hidden, heads, head_dim = 8, 2, 3
    kernel = RNG.normal(size=(hidden, heads, head_dim))
    x = RNG.normal(size=(5, hidden))
    keras = np.einsum("bh,hnd->bnd", x, kernel).reshape(5, -1)  # EinsumDense "abc,cde->abde"
    weight = MergeHeadsIn().apply(kernel)  # torch.nn.Linear: y = x @ W.T
    np.testing.assert_allclose(x @ weight.T, keras, rtol=1e-12)


def test_merge_heads_out_computes_what_the_einsum_dense_computes():
    heads, head_dim, hidden = 2, 3, 8
    kernel = RNG.normal(size=(heads, head_dim, hidden))
    x = RNG.normal(size=(5, heads, head_dim))
    keras = np.einsum("bnd,ndh->bh", x, kernel)
    weight = MergeHeadsOut().apply(kernel)
    np.testing.assert_allclose(x.reshape(5, -1) @ weight.T, keras, rtol=1e-12)


@pytest.mark.parametrize(
    "ops, shape",
    [
        ((Transpose(),), (3, 5)),
        ((MergeHeadsIn(),), (8, 2, 3)),
        ((MergeHeadsOut(),), (2, 3, 8)),
        ((Flatten(),), (2, 3)),
        ((PrependRows(rows=2),), (4, 3)),
        ((DropRows(rows=1), Transpose()), (4, 3)),
    ],
)
def test_each_op_predicts_its_shape_and_inverts_exactly(ops, shape):
    source = RNG.normal(size=shape)
    out = chain_apply(ops, source)
    assert out.shape == chain_shape(ops, shape)
    back = chain_apply(chain_inverse(ops, shape), out)
    if any(isinstance(op, DropRows) for op in ops):  # dropped rows come back as zeros
        source = source.copy()
        source[:1] = 0
    np.testing.assert_array_equal(back, source)


def test_ops_refuse_the_wrong_rank_instead_of_reshaping_to_fit():
    with pytest.raises(OpShapeError):
        Transpose().out_shape((3, 4, 5))
    with pytest.raises(OpShapeError):
        MergeHeadsIn().out_shape((12, 12))


def test_tables_cannot_declare_a_free_reshape():
    with pytest.raises(ValueError, match="unknown op 'reshape'"):
        build_op({"reshape": {"shape": [4, 4]}})
    assert build_op({"prepend_rows": {"rows": 2}}) == PrependRows(rows=2)
