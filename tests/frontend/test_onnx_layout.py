"""Layout operators, constants, the folded Shape arithmetic and Cast, imported and run,
against onnxruntime."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_models import check, make_model, one_node, randn


@pytest.mark.parametrize(
    "shape, axis", [((2, 3, 4, 5), 1), ((2, 3, 4), 0), ((2, 3, 4), 2), ((2, 3, 4), -1), ((2, 3), 2)]
)
def test_flatten(shape, axis):
    x = randn(np.random.default_rng(20), *shape)
    graph = check(one_node("Flatten", ["x"], {"x": x}, axis=axis), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["reshape"]


@pytest.mark.parametrize(
    "shape, target",
    [
        ((2, 3, 4), (6, 4)),
        ((2, 3, 4), (0, -1)),
        ((2, 3, 4), (-1,)),
        ((2, 3, 4), (4, 0, 2)),
        ((1, 6), (2, -1, 1)),
    ],
)
def test_reshape(shape, target):
    x = randn(np.random.default_rng(21), *shape)
    consts = {"shape": np.array(target, dtype=np.int64)}
    check(one_node("Reshape", ["x", "shape"], {"x": x}, consts), {"x": x})


@pytest.mark.parametrize("perm", [None, (0, 2, 3, 1), (3, 1, 0, 2)])
def test_transpose(perm):
    x = randn(np.random.default_rng(22), 2, 3, 4, 5)
    attrs = {} if perm is None else {"perm": perm}
    check(one_node("Transpose", ["x"], {"x": x}, **attrs), {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize(
    "shape, axes", [((1, 3, 1, 4), (0, 2)), ((1, 3, 1, 4), (-2,)), ((1, 3, 1, 1), None)]
)
def test_squeeze(opset, shape, axes):
    x = randn(np.random.default_rng(23), *shape)
    if axes is None:
        model = one_node("Squeeze", ["x"], {"x": x}, opset=opset)
    elif opset < 13:
        model = one_node("Squeeze", ["x"], {"x": x}, opset=opset, axes=axes)
    else:
        model = one_node("Squeeze", ["x", "axes"], {"x": x}, {"axes": np.array(axes)}, opset=opset)
    check(model, {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape, axes", [((3, 4), (0,)), ((3, 4), (1, -1)), ((2,), (0, 2, 3))])
def test_unsqueeze(opset, shape, axes):
    x = randn(np.random.default_rng(24), *shape)
    if opset < 13:
        model = one_node("Unsqueeze", ["x"], {"x": x}, opset=opset, axes=axes)
    else:
        model = one_node(
            "Unsqueeze", ["x", "axes"], {"x": x}, {"axes": np.array(axes)}, opset=opset
        )
    check(model, {"x": x})


@pytest.mark.parametrize(
    "axis, shapes",
    [(1, [(2, 3, 4), (2, 1, 4)]), (-1, [(2, 3), (2, 5), (2, 1)]), (0, [(1, 4), (3, 4)])],
)
def test_concat(axis, shapes):
    rng = np.random.default_rng(25)
    feeds = {f"x{i}": randn(rng, *s) for i, s in enumerate(shapes)}
    check(one_node("Concat", list(feeds), feeds, axis=axis), feeds)


PAD = [
    (11, (1, 2, 3, 3), [0, 0, 1, 2, 0, 0, 2, 1], None, None),
    (11, (1, 2, 3, 3), [0, 0, 1, 1, 0, 0, 1, 1], 1.5, None),
    (13, (2, 5), [1, -1, 0, 2], -2.0, None),  # a negative pad crops
    (18, (1, 2, 3, 3), [1, 2, 0, 1], 0.25, [2, 3]),
    (18, (1, 2, 3, 3), [1, 1], None, [-1]),
]


@pytest.mark.parametrize("opset, shape, pads, value, axes", PAD)
def test_pad(opset, shape, pads, value, axes):
    x = randn(np.random.default_rng(26), *shape)
    consts = {"pads": np.array(pads, dtype=np.int64)}
    inputs = ["x", "pads"]
    if value is not None or axes is not None:
        inputs.append("" if value is None else "value")
        if value is not None:
            consts["value"] = np.array(value, dtype=np.float32)
    if axes is not None:
        inputs.append("axes")
        consts["axes"] = np.array(axes, dtype=np.int64)
    check(one_node("Pad", inputs, {"x": x}, consts, opset=opset, mode="constant"), {"x": x})


@pytest.mark.parametrize(
    "opset, op, extra", [(11, "Identity", {}), (11, "Dropout", {}), (13, "Dropout", {"ratio": 0.3})]
)
def test_identity_and_dropout_are_dropped(opset, op, extra):
    x = randn(np.random.default_rng(27), 2, 3)
    nodes = [
        helper.make_node(op, ["x"] + ["ratio"] * bool(extra), ["t"]),
        helper.make_node("Relu", ["t"], ["y"]),
    ]
    consts = {k: np.array(v, dtype=np.float32) for k, v in extra.items()}
    graph = check(make_model(nodes, {"x": x}, consts, {"y": np.float32}, opset), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["relu"]
    assert graph.node("Relu_1").inputs == ("x",)


def test_identity_as_the_output():
    x = randn(np.random.default_rng(28), 3)
    check(one_node("Identity", ["x"], {"x": x}), {"x": x})


@pytest.mark.parametrize(
    "attr, value",
    [
        ("value", helper.make_tensor("c", TensorProto.FLOAT, [3], [1.0, -2.0, 0.5])),
        ("value_float", 2.5),
        ("value_floats", [1.0, 2.0, 3.0]),
    ],
)
def test_constant(attr, value):
    x = randn(np.random.default_rng(29), 2, 3)
    nodes = [
        helper.make_node("Constant", [], ["c"], **{attr: value}),
        helper.make_node("Mul", ["x", "c"], ["y"]),
    ]
    graph = check(make_model(nodes, {"x": x}, {}, {"y": np.float32}), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["mul"]


def test_flatten_by_shape_arithmetic_is_folded():
    """The pattern exporters write for x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat,
    Cast, Reshape; all but the reshape fold away."""
    x = randn(np.random.default_rng(30), 2, 3, 4)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["shape32"], axis=0),
        helper.make_node("Cast", ["shape32"], ["shape_i32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["shape_i32"], ["shape"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    consts = {"zero": np.array(0), "axes": np.array([0]), "minus_one": np.array([-1])}
    graph = check(make_model(nodes, {"x": x}, consts, {"y": np.float32}, 13), {"x": x})
    assert [n.op for n in graph.nodes_in_order()] == ["reshape"]
    assert graph.nodes_in_order()[0].attrs["shape"] == (2, 12)
    assert not graph.constants  # intermediate constants are pruned


@pytest.mark.parametrize("start, end", [(None, None), (1, None), (-2, -1)])
def test_shape_slices(start, end):
    x = randn(np.random.default_rng(31), 2, 3, 4)
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    model = one_node("Shape", ["x"], {"x": x}, opset=15, out_dtype=np.int64, **attrs)
    check(model, {"x": x}, exact=True)


@pytest.mark.parametrize("axis, indices", [(0, [2, 0]), (1, [[1, -1], [0, 2]]), (2, 1)])
def test_gather(axis, indices):
    x = randn(np.random.default_rng(32), 3, 4, 5)
    consts = {"i": np.array(indices, dtype=np.int64)}
    check(one_node("Gather", ["x", "i"], {"x": x}, consts, axis=axis), {"x": x}, exact=True)


@pytest.mark.parametrize(
    "src, dst",
    [
        (np.float32, np.int32),
        (np.int64, np.float32),
        (np.float32, np.uint8),
        (np.int32, np.int64),
        (np.float32, np.float32),
    ],
)
def test_cast(src, dst):
    rng = np.random.default_rng(33)
    if np.dtype(src).kind == "f":
        hi = 250 if dst == np.uint8 else 1000
        x = rng.uniform(0 if dst == np.uint8 else -1000, hi, (3, 4)).astype(src)
    else:
        x = rng.integers(-1000, 1000, (3, 4)).astype(src)
    to = helper.np_dtype_to_tensor_dtype(np.dtype(dst))
    check(one_node("Cast", ["x"], {"x": x}, out_dtype=dst, to=to), {"x": x}, exact=True)


SLICE = [
    # starts, ends, axes, steps
    ([1], [3], None, None),
    ([0, 1], [2, -1], [0, 2], None),
    ([-1], [-1000], [1], [-1]),  # reversed: the end clamps to "through index 0"
    ([10, 0], [0, 100], [2, 0], [-2, 2]),
    ([2], [1], [-1], None),  # empty
]


@pytest.mark.parametrize("starts, ends, axes, steps", SLICE)
def test_slice(starts, ends, axes, steps):
    x = randn(np.random.default_rng(34), 3, 4, 5)
    consts = {"starts": np.array(starts), "ends": np.array(ends)}
    inputs = ["x", "starts", "ends"]
    for name, value in (("axes", axes), ("steps", steps)):
        if value is not None:
            consts[name] = np.array(value)
            inputs.append(name)
        elif name == "axes" and steps is not None:
            inputs.append("")
    check(one_node("Slice", inputs, {"x": x}, consts), {"x": x}, exact=True)


SPLIT = [
    # opset, axis, sizes (None: equal parts), outputs, num_outputs
    (11, 1, [1, 3], 2, None),
    (11, 0, None, 3, None),
    (13, -1, [2, 2, 1], 3, None),
    (13, 1, None, 2, None),
    (18, 2, None, 2, 2),  # 5 cut in 2: the last part is smaller
]


@pytest.mark.parametrize("opset, axis, sizes, outputs, num_outputs", SPLIT)
def test_split(opset, axis, sizes, outputs, num_outputs):
    x = randn(np.random.default_rng(35), 3, 4, 5)
    names = [f"y{i}" for i in range(outputs)]
    attrs = {"axis": axis}
    inputs, consts = ["x"], {}
    if sizes is not None and opset < 13:
        attrs["split"] = sizes
    elif sizes is not None:
        inputs.append("split")
        consts["split"] = np.array(sizes)
    if num_outputs is not None:
        attrs["num_outputs"] = num_outputs
    node = helper.make_node("Split", inputs, names, name="split", **attrs)
    model = make_model([node], {"x": x}, consts, {n: np.float32 for n in names}, opset)
    graph = check(model, {"x": x}, exact=True)
    assert [n.op for n in graph.nodes_in_order()] == ["slice"] * outputs


REDUCE_MEAN = [
    (13, {"axes": [2, 3]}),
    (13, {"axes": [-1], "keepdims": 0}),
    (13, {}),
    (18, {"axes": [1]}),
    (18, {"axes": [0, -1], "keepdims": 0}),
    (18, {}),
    (18, {"noop_with_empty_axes": 1}),
]


@pytest.mark.parametrize("opset, attrs", REDUCE_MEAN)
def test_reduce_mean(opset, attrs):
    x = randn(np.random.default_rng(36), 2, 3, 4, 5)
    attrs = dict(attrs)
    consts, inputs = {}, ["x"]
    if opset >= 18 and "axes" in attrs:
        consts["axes"] = np.array(attrs.pop("axes"))
        inputs.append("axes")
    check(one_node("ReduceMean", inputs, {"x": x}, consts, opset=opset, **attrs), {"x": x})
