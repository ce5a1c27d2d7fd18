#!/usr/bin/env python3
"""Write the ONNX backend node tests of the ops edgeslim supports into a directory.

The onnx wheel does not ship the serialized node tests, but it ships their generators
(`onnx.backend.test.case.node.collect_testcases()`); this script serializes the cases of the
supported ops, the way onnx's own `backend-test-tools generate-data` does:

    <out>/<case>/model.onnx                  the case's model, unchanged
    <out>/<case>/model_frozen.onnx           every graph input but the first made an
                                             initializer with the test data's value (the
                                             runtime takes one input; weights, biases,
                                             scales, zero points and second operands are
                                             constants in a deployed model); a u8/i8 first
                                             input of a QLinear op / DequantizeLinear gets
                                             a float input + QuantizeLinear in front
    <out>/<case>/test_data_set_0/input_<i>.pb
    <out>/<case>/test_data_set_0/output_<i>.pb
    <out>/<case>/test_data_set_0/frozen_input_0.pb   float input of model_frozen.onnx when
                                             the case's input is a quantized (u8/i8) tensor

Usage: python3 tests/conformance/gen_node_tests.py target/onnx-node-tests
The Rust test `conformance::onnx_node_tests` reads the directory (or $EDGESLIM_ONNX_NODE_TESTS).
"""

import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper

# Case-name prefixes (after `test_`) of the ops in scope.
OPS = [
    "basic_conv",
    "conv",
    "gemm",
    "matmul",
    "relu",
    "clip",
    "add",
    "maxpool",
    "averagepool",
    "globalaveragepool",
    "flatten",
    "reshape",
    "concat",
    "qlinearconv",
    "qlinearmatmul",
    "quantizelinear",
    "dequantizelinear",
    "convtranspose",
    "sigmoid",
    "tanh",
    "hardsigmoid",
    "hardswish",
    "leakyrelu",
    "elu",
    "prelu",
    "mul",
    "div",
    "sub",
    "max",
    "min",
    "mean",
    "reduce_mean",
    "reduce_max",
    "constant_pad",  # Pad
    "edge_pad",
    "reflect_pad",
    "wrap_pad",
    "resize",
    "slice",
    "split",
    "gather",
    "squeeze",
    "unsqueeze",
    "transpose",
    "batchnorm",
    "softmax",
    "identity",
    "dropout",
    "training_dropout",  # Dropout with training_mode
    "constant",
]
# Prefixes that look like an op above but belong to another op (ConvInteger, MatMulInteger,
# SplitToSequence, GatherElements; `max_`/`min_`/`mean_` do not match MaxPool, MaxUnpool or
# ConstantOfShape, and `gather_` does not match GatherND).
NOT = ["convinteger", "matmulinteger", "split_to_sequence", "gather_elements"]


def selected(name):
    n = name[len("test_") :]
    if any(n == p or n.startswith(p + "_") for p in NOT):
        return False
    return any(n == p or n.startswith(p + "_") for p in OPS)


QUANT_INPUT_OPS = {"QLinearConv", "QLinearMatMul", "DequantizeLinear"}


def freeze(model, inputs):
    """Make every graph input but the first an initializer holding its test value.

    When the first input is an integer tensor read by a QLinear op or DequantizeLinear, it is
    a quantized activation: the graph gets a float input instead, followed by
    QuantizeLinear(x_scale, x_zero_point) of that op (the QOperator pattern), and the float
    input value (x - zp) * scale, which quantizes back to x exactly, is returned as well."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    init_names = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in init_names]
    values = {}
    for vi, val in zip(real[1:], inputs[1:]):
        t = numpy_helper.from_array(np.asarray(val), vi.name)
        g.initializer.append(t)
        g.input.remove(vi)
        values[vi.name] = np.asarray(val)
    x0 = np.asarray(inputs[0])
    float_input = None
    if x0.dtype in (np.uint8, np.int8):
        x_name = real[0].name
        users = [n for n in g.node if x_name in n.input]
        if users and users[0].op_type in QUANT_INPUT_OPS and users[0].input[0] == x_name:
            node = users[0]
            scale = values[node.input[1]]
            if len(node.input) > 2 and node.input[2]:
                zp_name = node.input[2]
                zp = values[zp_name]
            else:
                zp_name = x_name + "_zero_point"
                zp = np.zeros((), x0.dtype)
                g.initializer.append(numpy_helper.from_array(zp, zp_name))
            axis = [a for a in node.attribute if a.name == "axis"]
            if np.ndim(scale) == 0:
                xf = ((x0.astype(np.int32) - zp.astype(np.int32)) * scale).astype(np.float32)
            else:
                ax = axis[0].i if axis else 1
                shape = [1] * x0.ndim
                shape[ax] = -1
                xf = (
                    (x0.astype(np.int32) - zp.astype(np.int32).reshape(shape))
                    * scale.reshape(shape)
                ).astype(np.float32)
            fname = x_name + "_float"
            g.input.remove(real[0])
            g.input.insert(
                0, onnx.helper.make_tensor_value_info(fname, onnx.TensorProto.FLOAT, list(x0.shape))
            )
            q = onnx.helper.make_node(
                "QuantizeLinear", [fname, node.input[1], zp_name], [x_name], name="quantize_input"
            )
            for a in axis:
                q.attribute.append(a)
            g.node.insert(0, q)
            float_input = numpy_helper.from_array(xf, fname)
    onnx.checker.check_model(m)
    return m, float_input


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        print(__doc__)
        return 2
    out = sys.argv[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases

        cases = [c for c in collect_testcases() if selected(c.name)]
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    n = 0
    for case in cases:
        d = os.path.join(out, case.name)
        os.makedirs(d)
        model = case.model
        onnx.save(model, os.path.join(d, "model.onnx"))
        for k, (inputs, outputs) in enumerate(case.data_sets):
            sd = os.path.join(d, f"test_data_set_{k}")
            os.makedirs(sd)
            g = model.graph
            init_names = {i.name for i in g.initializer}
            real_in = [i for i in g.input if i.name not in init_names]
            for i, (vi, v) in enumerate(zip(real_in, inputs)):
                t = numpy_helper.from_array(np.asarray(v), vi.name) if not isinstance(
                    v, onnx.TensorProto
                ) else v
                with open(os.path.join(sd, f"input_{i}.pb"), "wb") as f:
                    f.write(t.SerializeToString())
            for i, (vi, v) in enumerate(zip(g.output, outputs)):
                t = numpy_helper.from_array(np.asarray(v), vi.name) if not isinstance(
                    v, onnx.TensorProto
                ) else v
                with open(os.path.join(sd, f"output_{i}.pb"), "wb") as f:
                    f.write(t.SerializeToString())
            if k == 0:
                try:
                    frozen, float_input = freeze(model, inputs)
                    onnx.save(frozen, os.path.join(d, "model_frozen.onnx"))
                    if float_input is not None:
                        with open(os.path.join(sd, "frozen_input_0.pb"), "wb") as f:
                            f.write(float_input.SerializeToString())
                except Exception as e:  # recorded; the Rust runner reports the missing file
                    with open(os.path.join(d, "freeze_error.txt"), "w") as f:
                        f.write(str(e))
        n += 1
    with open(os.path.join(out, "CASES.txt"), "w") as f:
        f.write("\n".join(sorted(c.name for c in cases)) + "\n")
    print(f"wrote {n} ONNX node test cases ({onnx.__version__}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
