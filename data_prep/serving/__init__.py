"""The local endpoint: SageMaker's container contract and runtime API over an ONNX model, with data capture."""
