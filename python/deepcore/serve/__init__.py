"""``deepcore serve``: an HTTP inference server with the KServe v2 / Open Inference Protocol
JSON API, dynamic batching and Prometheus metrics (needs ``pip install deepcore[serve]``).

    deepcore serve runs/cnn-digits/checkpoint.safetensors --port 8000
    deepcore serve model.onnx --max-batch-size 64 --max-delay-ms 5

    import deepcore.serve as serve
    from deepcore.serve import TensorSpec
    app = serve.create_app(model, name="digits", input_spec=TensorSpec("input", (1, 8, 8)))
    serve.run(model, name="digits", input_spec=(1, 8, 8), port=8000)

Endpoints and errors: deepcore/serve/app.py; the JSON messages: protocol.py; batching:
Note [Dynamic batching] in batching.py; metrics: metrics.py. Model files load without running
any code from them (deepcore/_model_files.py).
"""
from .._model_files import TensorSpec, load_model_file
from .app import create_app, run
from .model import ServedModel, load
from .protocol import RequestError

__all__ = ["create_app", "run", "load", "ServedModel", "TensorSpec", "RequestError",
           "load_model_file"]
