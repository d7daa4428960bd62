"""The graph IR itself: nodes, construction checks, order, printing and the executor's
argument handling, on graphs built by hand (expected values are written out in numpy)."""

import networkx as nx
import numpy as np
import pytest

from accel.errors import ArgumentError, GraphError
from accel.graph import Graph, Node, TensorInfo
from accel.graph.passes import fold_batch_norm

F32 = np.dtype(np.float32)


def t(*shape):
    return TensorInfo(shape, F32)


def diamond():
    """x -> relu a, relu b (in that order) -> add -> y, with a constant added first."""
    nodes = [
        Node("first", "add", ("x", "c"), ("xc",)),
        Node("a", "relu", ("xc",), ("ra",)),
        Node("b", "sigmoid", ("xc",), ("rb",)),
        Node("sum", "add", ("ra", "rb"), ("y",)),
    ]
    tensors = {"x": t(2, 3), "c": t(3), "xc": t(2, 3), "ra": t(2, 3), "rb": t(2, 3), "y": t(2, 3)}
    constants = {"c": np.array([1, -2, 3], np.float32)}
    return Graph(nodes, tensors, constants, ["x"], ["y", "ra"], name="diamond")


def test_node_is_frozen_and_structural():
    node = Node("n", "transpose", ("x",), ("y",), {"perm": [1, 0]})
    assert node.attrs["perm"] == (1, 0)  # lists become tuples
    assert node == Node("n", "transpose", ["x"], ["y"], {"perm": (1, 0)})
    assert hash(node) == hash(Node("n", "transpose", ("x",), ("y",), {"perm": (1, 0)}))
    with pytest.raises(AttributeError):
        node.op = "relu"
    with pytest.raises(TypeError):
        node.attrs["perm"] = (0, 1)
    assert str(node) == "n: y = transpose(x; perm=(1, 0))"


def test_networkx_view_and_order():
    graph = diamond()
    assert isinstance(graph.nx, nx.DiGraph)
    assert set(graph.nx.edges) == {("first", "a"), ("first", "b"), ("a", "sum"), ("b", "sum")}
    assert graph.nx.edges["a", "sum"]["tensors"] == ("ra",)
    assert [n.name for n in graph.nodes_in_order()] == ["first", "a", "b", "sum"]
    assert graph.producer("ra").name == "a" and graph.producer("x") is None
    assert [n.name for n in graph.consumers("xc")] == ["a", "b"]


def test_order_is_topological_whatever_the_insertion_order():
    graph = diamond()
    shuffled = Graph(
        list(reversed(graph.nodes_in_order())),
        graph.tensors,
        graph.constants,
        graph.inputs,
        graph.outputs,
    )
    assert [n.name for n in shuffled.nodes_in_order()] == ["first", "b", "a", "sum"]


def test_run_matches_numpy_and_returns_a_tuple_for_several_outputs():
    graph = diamond()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    xc = x + np.array([1, -2, 3], np.float32)
    y, ra = graph.run(x)
    np.testing.assert_allclose(ra, np.maximum(xc, 0))
    np.testing.assert_allclose(y, np.maximum(xc, 0) + 1 / (1 + np.exp(-xc)), rtol=1e-6)
    y2, _ = graph.run(x=x)
    np.testing.assert_array_equal(y, y2)


def test_run_leaves_constants_and_inputs_alone():
    graph = Graph([], {"x": t(2)}, {}, ["x"], ["x"])
    x = np.ones(2, np.float32)
    y = graph.run(x)
    y[0] = 5
    assert x[0] == 1


def test_run_refuses_mixed_positional_and_named():
    with pytest.raises(ArgumentError, match="either in order or by name"):
        diamond().run(np.zeros((2, 3), np.float32), x=np.zeros((2, 3), np.float32))


def test_printing():
    assert str(diamond()) == "\n".join(
        [
            "graph diamond(x: float32[2, 3]) -> (y: float32[2, 3], ra: float32[2, 3])",
            "  const c: float32[3]",
            "  first: xc: float32[2, 3] = add(x, c)",
            "  a: ra: float32[2, 3] = relu(xc)",
            "  b: rb: float32[2, 3] = sigmoid(xc)",
            "  sum: y: float32[2, 3] = add(ra, rb)",
        ]
    )


@pytest.mark.parametrize(
    "nodes, tensors, match",
    [
        ([Node("n", "relu", ("q",), ("y",))], {"y": t(2)}, r"node 'n' \(relu\): input 'q' is not"),
        (
            [Node("n", "relu", ("x",), ("y",)), Node("m", "relu", ("x",), ("y",))],
            {"y": t(2)},
            "tensor 'y' is defined twice",
        ),
        (
            [Node("n", "relu", ("x",), ("y",)), Node("n", "sigmoid", ("x",), ("z",))],
            {"y": t(2), "z": t(2)},
            "two nodes are named 'n'",
        ),
        (
            [Node("n", "add", ("x", "z"), ("y",)), Node("m", "relu", ("y",), ("z",))],
            {"y": t(2), "z": t(2)},
            "cycle",
        ),
        (
            [Node("n", "relu", ("x",), ("y",))],
            {"y": t(3)},
            r"outputs typed float32\[3\], not float32\[2\]",
        ),
    ],
)
def test_construction_checks(nodes, tensors, match):
    with pytest.raises(GraphError, match=match):
        Graph(nodes, {"x": t(2), **tensors}, {}, ["x"], ["y"])


def test_constant_type_must_match():
    with pytest.raises(GraphError, match="constant 'c' is float64"):
        Graph([], {"c": t(2)}, {"c": np.zeros(2)}, [], ["c"])


def test_fold_batch_norm_returns_the_same_graph_when_nothing_matches():
    graph = diamond()
    assert fold_batch_norm(graph) is graph


def test_fold_batch_norm_numerics():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    gamma, beta, mean = (rng.standard_normal(2).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2, 2).astype(np.float32)
    conv_attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "group": 1}
    nodes = [
        Node("conv", "conv", ("x", "w"), ("c",), conv_attrs),
        Node("bn", "batch_norm", ("c", "g", "b", "m", "v"), ("y",), {"epsilon": 1e-5}),
    ]
    consts = {"w": w, "g": gamma, "b": beta, "m": mean, "v": var}
    tensors = {"x": t(1, 3, 2, 2), "c": t(1, 2, 2, 2), "y": t(1, 2, 2, 2)}
    tensors.update({k: TensorInfo(v.shape, v.dtype) for k, v in consts.items()})
    folded = fold_batch_norm(Graph(nodes, tensors, consts, ["x"], ["y"]))
    assert [n.op for n in folded.nodes_in_order()] == ["conv"]
    x = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    # 1x1 convolution written as an einsum, then the batch normalization formula.
    c = np.einsum("nchw,mc->nmhw", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
    ch = (1, -1, 1, 1)
    want = (c - mean.reshape(ch)) / np.sqrt(var.reshape(ch) + 1e-5) * gamma.reshape(
        ch
    ) + beta.reshape(ch)
    np.testing.assert_allclose(folded.run(x), want, rtol=1e-5, atol=1e-6)
