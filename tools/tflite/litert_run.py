#!/usr/bin/env python3
"""Run an int8 TFLite file in the LiteRT interpreter (the `ai-edge-litert` package) with its
reference kernels, on int8 inputs, and print the int8 outputs as JSON.

    litert_run.py MODEL.tflite INPUT.npy [INPUT2.npy ...]

Each INPUT.npy holds N samples of one graph input (int8, any shape whose trailing elements
per sample equal the input's). Prints {"outputs": [[sample 0 output 0 values, ...], ...]}:
per sample, per graph output in the model's order, the flattened int8 values (TFLite's NHWC
order). The reference kernels (`OpResolverType.BUILTIN_REF`) are TFLite's specification of
each operator; the default resolver would run XNNPACK's kernels, which requantize in float.
"""
import json
import sys

import numpy as np


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError as e:
        print(f"error: ai-edge-litert is not installed ({e}); pip install ai-edge-litert",
              file=sys.stderr)
        return 3
    interp = litert.Interpreter(
        model_path=sys.argv[1],
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
        num_threads=1,
    )
    interp.allocate_tensors()
    ins = interp.get_input_details()
    outs = interp.get_output_details()
    xs = [np.load(p) for p in sys.argv[2:]]
    if len(xs) != len(ins):
        print(f"error: the model has {len(ins)} inputs, {len(xs)} given", file=sys.stderr)
        return 2
    n = xs[0].shape[0]
    result = []
    for s in range(n):
        for d, x in zip(ins, xs):
            v = x[s].reshape(d["shape"])
            if v.dtype != np.int8 or d["dtype"] != np.int8:
                print(f"error: input {d['name']} is {d['dtype']}, given {v.dtype}",
                      file=sys.stderr)
                return 2
            interp.set_tensor(d["index"], v)
        interp.invoke()
        result.append([interp.get_tensor(d["index"]).astype(np.int32).ravel().tolist()
                       for d in outs])
    json.dump({"outputs": result, "output_names": [d["name"] for d in outs]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
