//! ONNX to edgeslim model blob.
