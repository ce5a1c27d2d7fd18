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
                                             constants in a deployed model)
    <out>/<case>/test_data_set_0/input_<i>.pb
    <out>/<case>/test_data_set_0/output_<i>.pb

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
]
# Prefixes that look like an op above but belong to another op.
NOT = ["convinteger", "convtranspose", "matmulinteger", "conv_transpose"]


def selected(name):
    n = name[len("test_") :]
    if any(n == p or n.startswith(p + "_") for p in NOT):
        return False
    return any(n == p or n.startswith(p + "_") for p in OPS)


def freeze(model, inputs):
    """Make every graph input but the first an initializer holding its test value."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    init_names = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in init_names]
    for vi, val in zip(real[1:], inputs[1:]):
        t = numpy_helper.from_array(np.asarray(val), vi.name)
        g.initializer.append(t)
        g.input.remove(vi)
    return m


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
                    frozen = freeze(model, inputs)
                    onnx.save(frozen, os.path.join(d, "model_frozen.onnx"))
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
