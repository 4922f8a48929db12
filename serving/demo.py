"""The serving part of the end-to-end demo: serve a model, answer a few requests through
Triton's client, print them, and shut the daemon down cleanly.

    >>> from serving.demo import serve_and_query                          # doctest: +SKIP
    >>> serve_and_query(traced.net, {"x": images[:3]}, model_name="digits")  # doctest: +SKIP

`python -m serving.demo` runs it on a small hand-built net. The daemon is a separate process
(`python -m serving`), as in production; this module never imports the protocol modules, so it
can share a process with tritonclient.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

import numpy as np

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve_and_query(net, feeds, model_name="model", max_batch_size=16, print_fn=print):
    """Saves `net` (a NetDef) into a temporary repository, starts the daemon on a free port,
    sends `feeds` (input name -> array with the batch in dimension 0) through
    tritonclient.grpc, checks the answers against graphruntime.Predictor, prints them and stops
    the daemon with SIGTERM. Returns the outputs (name -> array)."""
    import graphruntime
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import np_to_triton_dtype

    with tempfile.TemporaryDirectory() as root:
        version_dir = os.path.join(root, model_name, "1")
        os.makedirs(version_dir)
        path = os.path.join(version_dir, "model.pb")
        graphruntime.save(net, path)
        with open(os.path.join(root, model_name, "config.json"), "w") as f:
            f.write('{"max_batch_size": %d, "dynamic_batching": {}}' % max_batch_size)
        env = dict(os.environ, PYTHONPATH=SOURCE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model-repository", root, "--port", "0",
             "--metrics-port", "-1", "--poll-interval", "0", "--log-level", "WARNING"],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            line = daemon.stdout.readline()
            match = re.search(r"listening on (\S+:\d+)", line)
            if not match:
                raise RuntimeError(f"the serving daemon did not start: {line!r}")
            print_fn(f"== serving: {line.strip()}")
            client = grpcclient.InferenceServerClient(match.group(1))
            metadata = client.get_model_metadata(model_name)
            print_fn(f"   model '{model_name}' versions {list(metadata.versions)}: inputs "
                     f"{[(t.name, t.datatype, list(t.shape)) for t in metadata.inputs]}, outputs "
                     f"{[(t.name, t.datatype, list(t.shape)) for t in metadata.outputs]}")
            inputs = []
            for name, array in feeds.items():
                array = np.ascontiguousarray(array)
                tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
                tensor.set_data_from_numpy(array)
                inputs.append(tensor)
            result = client.infer(model_name, inputs, request_id="demo")
            outputs = {t.name: result.as_numpy(t.name) for t in metadata.outputs}
            expected = graphruntime.Predictor(path).run(dict(feeds))
            for name, value in outputs.items():
                np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6)
                print_fn(f"   {name}: shape {list(value.shape)}, first row "
                         f"{np.array2string(value.reshape(value.shape[0], -1)[0][:10], precision=3)}"
                         " (equal to the in-process Predictor)")
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
        print_fn(f"   daemon stopped with SIGTERM, exit code {code}")
        if code != 0:
            raise RuntimeError(f"the serving daemon exited with code {code}")
        return outputs


def main():
    """Serves a two-layer net built with NetBuilder and queries it."""
    from graphruntime.netdef import NetBuilder

    rng = np.random.default_rng(0)
    b = NetBuilder("demo")
    x = b.input("x", "float32", [-1, 8])
    w1 = b.initializer("w1", rng.standard_normal((16, 8)).astype(np.float32))
    w2 = b.initializer("w2", rng.standard_normal((3, 16)).astype(np.float32))
    h = b.op("linear", [x, w1, None], {"activation": "relu"})
    b.output(b.op("softmax", [b.op("linear", [h, w2, None])]), "probabilities")
    serve_and_query(b.build(), {"x": rng.standard_normal((4, 8)).astype(np.float32)}, "demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
