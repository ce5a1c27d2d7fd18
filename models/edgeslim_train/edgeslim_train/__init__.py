"""edgeslim_train: make a PyTorch network slimmable, train it with the sandwich rule and export
it for edgeslim (ONNX + `edgeslim.manifest` + int8 QDQ).

Modules (PyTorch is imported only by the ones that need it):
  slim     slimmable layers: SlimConv2d (switchable BatchNorm), SlimConvTranspose2d, SlimLinear,
           ConvAct, InvertedResidual, MultiTaskNet, set_config, active, WIDTHS, CHANNEL_RULE
  recipe   sandwich_step (in-place distillation + configuration-invariant loss),
           recalibrate_bn, predict, widest / narrowest / random_config
  export   export (ONNX + manifest + QDQ), deploy_copy, per_width_entries, quantize_qdq
  slicer   numpy + onnx: slice a full-width model to a width config, count MACs, run ORT
  metrics  numpy: accuracy, mIoU / pixel accuracy, RMSE / abs-rel

The names above are also importable from the package itself (loaded on first use):
`from edgeslim_train import SlimConv2d, sandwich_step, export`.
"""

import importlib

__version__ = "0.1.0"

_WHERE = {
    "slim": ["SlimConv2d", "SlimConvTranspose2d", "SlimLinear", "ConvAct", "InvertedResidual",
             "MultiTaskNet", "Slim", "set_config", "active", "WIDTHS", "CHANNEL_RULE"],
    "recipe": ["sandwich_step", "recalibrate_bn", "predict", "widest", "narrowest",
               "random_config", "ci_loss", "kd_softmax", "soft_teacher"],
    "export": ["export", "export_onnx", "deploy_copy", "per_width_entries", "make_manifest",
               "set_manifest", "quantize_qdq", "ALLOWED_OPS"],
}
_NAME_TO_MODULE = {n: m for m, ns in _WHERE.items() for n in ns}


def __getattr__(name):
    if name in _NAME_TO_MODULE:
        return getattr(importlib.import_module(f".{_NAME_TO_MODULE[name]}", __name__), name)
    raise AttributeError(f"module 'edgeslim_train' has no attribute {name!r}")
