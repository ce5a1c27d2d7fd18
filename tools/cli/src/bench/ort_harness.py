# ONNX Runtime side of `edgeslim bench` (tools/cli/src/bench/ort.rs starts it).
#
# argv: MODEL.onnx INPUT.npy (float32, batch 1). One JSON object per line on stdout: first a
# hello (versions, input name, how the session was made) or {"error": ...}, then one reply per
# command read from stdin:
#   time model N      N timed calls of the model: {"ns": [...]}
#   time identity N   the same loop around an Identity model on the same input: the harness's
#                     own per-call cost (binding, input and output conversion, the loop), which
#                     edgeslim subtracts from the model's times
#   outputs           the model's outputs on the input: {"outputs": [{"name", "shape", "data"}]}
#   quit
# A failing command replies {"error": ...}.
import json
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        reply({"error": f"python package {e.name} is not installed", "missing": e.name})
        return
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as e:
        reply(
            {
                "error": f"python package {e.name} is not installed (it builds the Identity "
                "model that measures the harness overhead)",
                "missing": e.name,
            }
        )
        return
    model_path, input_path = sys.argv[1], sys.argv[2]
    try:
        x = np.load(input_path).astype(np.float32)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        sess = ort.InferenceSession(model_path, so, providers=providers)
        inputs = sess.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs; bench feeds one")
        name = inputs[0].name
        # The declared shape, a symbolic dimension (batch) taken as 1.
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inputs[0].shape]
        if int(np.prod(shape)) == x.size:
            x = x.reshape(shape)
        feed = {name: x}
        graph = helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "harness_overhead",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))],
        )
        ident_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        ident_model.ir_version = 8
        ident = ort.InferenceSession(ident_model.SerializeToString(), so, providers=providers)
        ident_feed = {"x": x}
    except Exception as e:  # noqa: BLE001 - any failure means "not measured", with the reason
        reply({"error": f"{type(e).__name__}: {e}".replace("\n", " ")})
        return
    reply(
        {
            "onnxruntime": ort.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "providers": sess.get_providers(),
            "input": name,
            "shape": list(x.shape),
        }
    )

    def timed(s, f, n):
        clock = time.perf_counter_ns
        run = s.run
        ns = []
        for _ in range(n):
            t0 = clock()
            run(None, f)
            ns.append(clock() - t0)
        return ns

    for line in sys.stdin:
        cmd = line.split()
        try:
            if cmd == ["quit"]:
                return
            if len(cmd) == 3 and cmd[0] == "time" and cmd[1] in ("model", "identity"):
                s, f = (sess, feed) if cmd[1] == "model" else (ident, ident_feed)
                reply({"ns": timed(s, f, int(cmd[2]))})
            elif cmd == ["outputs"]:
                outs = sess.run(None, feed)
                reply(
                    {
                        "outputs": [
                            {
                                "name": o.name,
                                "shape": list(v.shape),
                                "data": v.astype(np.float32).ravel().tolist(),
                            }
                            for o, v in zip(sess.get_outputs(), outs)
                        ]
                    }
                )
            else:
                reply({"error": f"unknown command {line.strip()!r}"})
        except Exception as e:  # noqa: BLE001
            reply({"error": f"{type(e).__name__}: {e}".replace("\n", " ")})


main()
