"""Views and shape ops vs PyTorch, forward and backward, and the storage-sharing contract."""
import numpy as np
import pytest
import torch

import deepcore as dc
from helpers import ALL_DTYPES, assert_close, check_op, gradcheck_op, np_dtype

# name -> (deepcore fn, torch fn, cases)
SHAPE_OPS = {
    "view": (lambda x: x.view(4, -1), lambda x: x.view(4, -1), [((2, 6),), ((4, 3),)]),
    "view_0d": (lambda x: x.view(1, 1), lambda x: x.view(1, 1), [((),)]),
    "reshape": (lambda x: x.reshape(-1, 2), lambda x: x.reshape(-1, 2), [((3, 4),), ((2, 3, 2),)]),
    "reshape_fn": (lambda x: dc.reshape(x, (3, 2, 2)), lambda x: torch.reshape(x, (3, 2, 2)),
                   [((12,),), ((4, 3),)]),
    "reshape_empty": (lambda x: x.reshape(-1, 3), lambda x: x.reshape(-1, 3), [((0, 6),)]),
    "permute": (lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1), [((2, 3, 4),)]),
    "permute_fn": (lambda x: dc.permute(x, (1, -1, 0)), lambda x: torch.permute(x, (1, -1, 0)),
                   [((2, 3, 4),)]),
    "transpose": (lambda x: x.transpose(0, -1), lambda x: x.transpose(0, -1),
                  [((2, 3, 4),), ((3, 5),)]),
    "swapaxes": (lambda x: dc.swapaxes(x, 0, 1), lambda x: torch.swapaxes(x, 0, 1), [((3, 5),)]),
    "t": (lambda x: x.t(), lambda x: x.t(), [((3, 5),), ((4,),)]),
    "T": (lambda x: x.T, lambda x: x.permute(*range(x.dim() - 1, -1, -1)), [((3, 5),), ((2, 3, 4),)]),
    "mT": (lambda x: x.mT, lambda x: x.mT, [((2, 3, 4),)]),
    "expand": (lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4), [((3, 1),), ((4,),), ((),)]),
    "expand_minus1": (lambda x: x.expand(5, -1), lambda x: x.expand(5, -1), [((1, 4),)]),
    "expand_as": (lambda x, y: x.expand_as(y), lambda x, y: x.expand_as(y), [((3, 1), (2, 3, 4))]),
    "broadcast_to": (lambda x: dc.broadcast_to(x, (3, 4)), lambda x: torch.broadcast_to(x, (3, 4)),
                     [((4,),)]),
    "squeeze": (lambda x: x.squeeze(), lambda x: x.squeeze(), [((1, 3, 1, 4),), ((1,),), ((3, 4),)]),
    "squeeze_dim": (lambda x: x.squeeze(-2), lambda x: x.squeeze(-2), [((3, 1, 4),), ((3, 2, 4),)]),
    "squeeze_dims": (lambda x: dc.squeeze(x, (0, 2)), lambda x: torch.squeeze(x, (0, 2)),
                     [((1, 3, 1, 4),)]),
    "unsqueeze": (lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1), [((3, 4),), ((),)]),
    "unsqueeze_neg": (lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), [((3, 4),)]),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten(), [((2, 3, 4),), ((),)]),
    "flatten_range": (lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2), [((2, 3, 4, 5),)]),
    "unflatten": (lambda x: x.unflatten(1, (3, -1)), lambda x: x.unflatten(1, (3, -1)),
                  [((2, 12),)]),
    "select": (lambda x: x.select(1, -1), lambda x: x.select(1, -1), [((3, 4, 2),)]),
    "narrow": (lambda x: x.narrow(1, 1, 2), lambda x: x.narrow(1, 1, 2), [((3, 4),)]),
    "split": (lambda x: x.split(2, dim=1), lambda x: x.split(2, dim=1), [((3, 5),)]),
    "split_sizes": (lambda x: dc.split(x, [1, 3, 1], 1), lambda x: torch.split(x, [1, 3, 1], 1),
                    [((3, 5),)]),
    "chunk": (lambda x: x.chunk(3), lambda x: x.chunk(3), [((7, 2),), ((6, 2),), ((2, 3),)]),
    "unbind": (lambda x: x.unbind(1), lambda x: x.unbind(1), [((3, 4),)]),
    "flip": (lambda x: x.flip(0), lambda x: x.flip(0), [((3, 4),), ((5,),)]),
    "flip_many": (lambda x: dc.flip(x, (0, -1)), lambda x: torch.flip(x, (0, -1)), [((2, 3, 4),)]),
    "repeat": (lambda x: x.repeat(2, 3), lambda x: x.repeat(2, 3), [((3, 4),), ((4,),)]),
    "repeat_more": (lambda x: x.repeat(2, 1, 2), lambda x: x.repeat(2, 1, 2), [((3, 4),)]),
    "tril": (lambda x: x.tril(), lambda x: x.tril(), [((4, 5),), ((2, 3, 3),)]),
    "tril_k": (lambda x: dc.tril(x, -1), lambda x: torch.tril(x, -1), [((4, 5),)]),
    "triu": (lambda x: x.triu(), lambda x: x.triu(), [((4, 5),), ((2, 3, 3),)]),
    "triu_k": (lambda x: dc.triu(x, 2), lambda x: torch.triu(x, 2), [((4, 5),)]),
    "contiguous": (lambda x: x.contiguous(), lambda x: x.contiguous(), [((3, 4),)]),
    "clone": (lambda x: x.clone(), lambda x: x.clone(), [((3, 4),)]),
    "view_as": (lambda x, y: x.view_as(y), lambda x, y: x.view_as(y), [((12,), (3, 4))]),
    "reshape_as": (lambda x, y: x.reshape_as(y), lambda x, y: x.reshape_as(y), [((3, 4), (12,))]),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_op(name):
    f, tf, cases = SHAPE_OPS[name]
    # view needs a viewable input: no non-contiguous variants for it.
    check_op(f, tf, cases, noncontig=not name.startswith("view"))


@pytest.mark.parametrize("name", ["reshape", "permute", "transpose", "expand", "squeeze",
                                  "unsqueeze", "flatten", "select", "flip", "repeat", "tril",
                                  "chunk", "narrow"])
def test_shape_op_other_dtypes(name):
    f, tf, cases = SHAPE_OPS[name]
    check_op(f, tf, cases, dtypes=ALL_DTYPES, grad=False)


INDEXING = {
    "int": lambda x: x[1],
    "neg_int": lambda x: x[-1],
    "slice": lambda x: x[1:3],
    "slice_step": lambda x: x[::2],
    "slice_neg": lambda x: x[-3:-1],
    "slice_neg_start_step": lambda x: x[-4::3],
    "slice_out_of_range": lambda x: x[2:100],
    "slice_empty": lambda x: x[3:1],
    "both_dims": lambda x: x[1:, ::2],
    "second_dim_int": lambda x: x[:, -2],
    "ellipsis": lambda x: x[..., 1:],
    "none": lambda x: x[None, :, None],
    "ellipsis_none": lambda x: x[..., None],
    "full": lambda x: x[:],
    "chain": lambda x: x[1:][::2][0],
}


@pytest.mark.parametrize("name", sorted(INDEXING))
def test_basic_indexing(name):
    f = INDEXING[name]
    check_op(f, f, [((5, 6),), ((5, 3, 4),)])


def test_cat():
    check_op(lambda a, b: dc.cat([a, b]), lambda a, b: torch.cat([a, b]),
             [((2, 3), (4, 3)), ((0, 3), (2, 3))])
    check_op(lambda a, b, c: dc.cat([a, b, c], dim=-1), lambda a, b, c: torch.cat([a, b, c], -1),
             [((2, 3), (2, 1), (2, 4)), ((2, 2, 1), (2, 2, 3), (2, 2, 2))])
    check_op(lambda a, b: dc.concat((a, b), 1), lambda a, b: torch.concat((a, b), 1),
             [((2, 3), (2, 5))])
    # Legacy rule: 1-D empty tensors are skipped whatever the other shapes.
    check_op(lambda a, b: dc.cat([a, b]), lambda a, b: torch.cat([a, b]), [((0,), (2, 3))])


def test_cat_mixed_dtypes():
    for da, db in [(dc.float32, dc.float64), (dc.int32, dc.float32), (dc.bool, dc.int64),
                   (dc.int64, dc.int32)]:
        check_op(lambda a, b: dc.cat([a, b], 1), lambda a, b: torch.cat([a, b], 1),
                 [((2, 3), (2, 2))], dtypes=[(da, db)])


def test_stack():
    check_op(lambda a, b: dc.stack([a, b]), lambda a, b: torch.stack([a, b]), [((2, 3), (2, 3))])
    check_op(lambda a, b, c: dc.stack([a, b, c], dim=-1),
             lambda a, b, c: torch.stack([a, b, c], -1), [((2, 3), (2, 3), (2, 3)), ((), (), ())])
    check_op(lambda a, b: dc.stack([a, b], 1), lambda a, b: torch.stack([a, b], 1),
             [((2, 3), (2, 3))], dtypes=[(dc.float32, dc.float64), (dc.int64, dc.int64)])


def test_cat_stack_errors():
    with pytest.raises(ValueError, match="cat"):
        dc.cat([dc.ones(2, 3), dc.ones(3, 2)])
    with pytest.raises(ValueError, match="cat"):
        dc.cat([dc.ones(2, 3), dc.ones(3)])
    with pytest.raises(ValueError, match="cat"):
        dc.cat([])
    with pytest.raises(ValueError, match="stack"):
        dc.stack([dc.ones(2, 3), dc.ones(2, 4)])
    with pytest.raises(IndexError, match="cat"):
        dc.cat([dc.ones(2, 3), dc.ones(2, 3)], dim=2)


@pytest.mark.parametrize("name", ["permute", "transpose", "expand", "select", "flip", "repeat",
                                  "tril", "unflatten", "split", "narrow", "squeeze"])
def test_shape_gradcheck(name):
    f, _, cases = SHAPE_OPS[name]
    assert gradcheck_op(lambda x: f(x), cases[0])


def test_cat_stack_gradcheck():
    assert gradcheck_op(lambda a, b: dc.cat([a, b], 1), [(2, 3), (2, 2)])
    assert gradcheck_op(lambda a, b: dc.stack([a, b], 0) * dc.stack([b, a], 0), [(2, 3), (2, 3)])
    assert gradcheck_op(lambda a: a[1:, ::2] * a[:-1, 1:4:2], [(3, 4)])


def test_slice_double_backward():
    x = dc.arange(6.0, requires_grad=True)
    tx = torch.arange(6.0, requires_grad=True)
    for a, lib in [(x, dc), (tx, torch)]:
        y = (a[1::2] ** 3).sum()
        (g,) = lib.autograd.grad(y, a, create_graph=True)
        g.sum().backward()
    assert_close(x.grad, tx.grad)


# ---- views share storage ----------------------------------------------------------------------

VIEWS = {
    "view": lambda x: x.view(-1),
    "reshape_viewable": lambda x: x.reshape(4, 3),
    "permute": lambda x: x.permute(1, 0),
    "transpose": lambda x: x.transpose(0, 1),
    "T": lambda x: x.T,
    "t": lambda x: x.t(),
    "squeeze": lambda x: x.unsqueeze(0).squeeze(0),
    "unsqueeze": lambda x: x.unsqueeze(1),
    "flatten": lambda x: x.flatten(),
    "unflatten": lambda x: x.unflatten(1, (2, 2)),
    "slice": lambda x: x[1:, ::2],
    "neg_slice": lambda x: x[-2:, -3:],
    "select": lambda x: x[1],
    "select_fn": lambda x: x.select(1, 2),
    "narrow": lambda x: x.narrow(1, 1, 2),
    "split": lambda x: x.split(2, dim=1)[1],
    "chunk": lambda x: x.chunk(2, 0)[1],
    "unbind": lambda x: x.unbind(0)[2],
    "detach": lambda x: x.detach(),
    "view_of_view": lambda x: x[1:].T[::2],
    "as_strided": lambda x: dc.as_strided(x, (2, 2), (1, 4)),
    "getitem_all": lambda x: x[...],
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_share_storage(name):
    f = VIEWS[name]
    base = dc.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    ref = torch.arange(12.0).reshape(3, 4)
    v = f(base)
    tv = f(ref) if name != "as_strided" else torch.as_strided(ref, (2, 2), (1, 4))
    assert tuple(v.shape) == tuple(tv.shape)
    # Write through the view: the base must change exactly where torch's base changes.
    v.mul_(-1.0)
    tv.mul_(-1.0)
    assert_close(base, ref, msg=f"{name}: write through view")
    # Write to the base: the view must see it.
    base.add_(100.0)
    ref.add_(100.0)
    assert_close(v, tv, msg=f"{name}: view sees base write")


def test_reshape_copies_when_not_viewable():
    x = dc.tensor(np.arange(12.0).reshape(3, 4))
    xt = x.t()
    assert not xt.is_contiguous()
    r = xt.reshape(-1)
    assert r.tolist() == torch.arange(12.0, dtype=torch.float64).reshape(3, 4).t().reshape(-1).tolist()
    r.fill_(0.0)
    assert x.sum().item() == 66.0, "reshape of a non-viewable tensor must copy"
    with pytest.raises(RuntimeError, match="reshape"):
        xt.view(-1)
    # Viewable although not contiguous: splitting a dim of a transposed tensor.
    v = xt.view(2, 2, 3)
    assert_close(v, torch.arange(12.0, dtype=torch.float64).reshape(3, 4).t().view(2, 2, 3))


def test_view_strides_match_torch():
    t = torch.arange(24.0).reshape(2, 3, 4)
    x = dc.tensor(t.numpy())
    for f in [lambda a: a.transpose(0, 2), lambda a: a[:, 1:, ::2], lambda a: a.permute(1, 2, 0),
              lambda a: a.unsqueeze(1), lambda a: a[1], lambda a: a.expand(3, 2, 3, 4),
              lambda a: a[:, :, 1:3].reshape(2, 6)]:
        assert f(x).stride() == f(t).stride()
        assert f(x).storage_offset() == f(t).storage_offset()
        assert f(x).is_contiguous() == f(t).is_contiguous()


def test_expand_rejects_bad_sizes():
    with pytest.raises(ValueError, match="expand"):
        dc.ones(3, 2).expand(3, 4)
    with pytest.raises(ValueError, match="expand"):
        dc.ones(3).expand(-1, 3)


def test_split_chunk_shapes_match_torch():
    t = torch.arange(10.0)
    x = dc.arange(10.0)
    for k in [1, 3, 4, 10, 11]:
        assert [tuple(p.shape) for p in x.split(k)] == [tuple(p.shape) for p in t.split(k)]
    for k in [1, 3, 4, 6, 10, 11]:
        assert [tuple(p.shape) for p in x.chunk(k)] == [tuple(p.shape) for p in t.chunk(k)]
    with pytest.raises(ValueError, match="split"):
        x.split([3, 3])


def test_shape_ops_autograd_names():
    x = dc.rand(2, 3, requires_grad=True)
    assert type(x.t().grad_fn).__name__ == "Node"
    assert repr(x.t().grad_fn) == "<PermuteBackward0>"
    assert repr(x.view(6).grad_fn) == "<ViewBackward0>"
    assert repr(x[0].grad_fn) in ("<SliceBackward0>", "<ViewBackward0>", "<SelectBackward0>")


COVERED_OPS = {"view", "reshape", "permute", "transpose", "t", "expand", "squeeze", "unsqueeze",
               "flatten", "unflatten", "select", "narrow", "split", "chunk", "unbind", "cat",
               "stack", "flip", "repeat", "tril", "triu", "as_strided", "contiguous", "clone",
               "swapaxes"}
