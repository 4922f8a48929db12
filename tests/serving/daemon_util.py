"""Helpers for the daemon tests: model repositories built with NetBuilder, and a real
`python -m serving` subprocess on a free port."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LISTENING = re.compile(r"listening on (\S+):(\d+) \(metrics ([^,\s)]+)")


def linear_net(in_features, out_features, seed, name="linear"):
    """x[-1, in] -> linear(weight, bias, activation relu) -> y[-1, out]; weights from `seed`."""
    from graphruntime.netdef import NetBuilder

    rng = np.random.default_rng(seed)
    b = NetBuilder(name)
    x = b.input("x", "float32", [-1, in_features])
    w = b.initializer("weight", rng.standard_normal((out_features, in_features)).astype(np.float32))
    bias = b.initializer("bias", rng.standard_normal(out_features).astype(np.float32))
    b.output(b.op("linear", [x, w, bias], {"activation": "relu"}), "y")
    return b.build()


def pair_net():
    """Two inputs a, b [-1, 4] float32 -> sum = a + b, product = a * b."""
    from graphruntime.netdef import NetBuilder

    b = NetBuilder("pair")
    a = b.input("a", "float32", [-1, 4])
    c = b.input("b", "float32", [-1, 4])
    b.output(b.op("add", [a, c]), "sum")
    b.output(b.op("mul", [a, c]), "product")
    return b.build()


def slow_net(width, layers, seed=3, batch=-1):
    """`layers` rounds of h = tanh(h * w + b) on [batch, width]: slow enough to pile requests up."""
    from graphruntime.netdef import NetBuilder

    rng = np.random.default_rng(seed)
    b = NetBuilder("slow")
    h = b.input("x", "float32", [batch, width])
    for i in range(layers):
        w = b.initializer(f"w{i}", rng.uniform(0.9, 1.0, width).astype(np.float32))
        bias = b.initializer(f"b{i}", rng.uniform(-0.1, 0.1, width).astype(np.float32))
        h = b.op("tanh", [b.op("add", [b.op("mul", [h, w]), bias])])
    b.output(h, "y")
    return b.build()


def write_version(repository, model, version, net):
    """Saves `net` as repository/model/version/model.pb atomically (write, then rename)."""
    import graphruntime

    directory = os.path.join(repository, model, str(version))
    os.makedirs(directory, exist_ok=True)
    staging = os.path.join(repository, f".{model}-{version}.pb")
    graphruntime.save(net, staging)
    os.replace(staging, os.path.join(directory, "model.pb"))
    return os.path.join(directory, "model.pb")


def write_config(repository, model, config):
    os.makedirs(os.path.join(repository, model), exist_ok=True)
    with open(os.path.join(repository, model, "config.json"), "w") as f:
        json.dump(config, f)


# How the daemon is started: `python -m serving ...` or the `ember serve ...` console script.
ENTRY_POINTS = {
    "python -m serving": [sys.executable, "-m", "serving"],
    "ember serve": [sys.executable, "-c", "import sys; from graphruntime.cli import main; "
                    "sys.exit(main())", "serve"],
}


class Daemon:
    """The daemon on a free port; `url` for tritonclient, `metrics_url` for Prometheus."""

    def __init__(self, repository, *extra_args, log_path=None, entry="python -m serving"):
        env = dict(os.environ, PYTHONPATH=SOURCE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log_path = log_path or os.path.join(repository, "..", "daemon.log")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [*ENTRY_POINTS[entry], "--model-repository", repository, "--port", "0",
             "--metrics-port", "0", "--log-level", "WARNING", *extra_args],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=SOURCE_ROOT)
        line = self.process.stdout.readline()
        match = LISTENING.search(line)
        if not match:
            self.process.kill()
            raise RuntimeError(f"daemon did not start: {line!r}; log: {self.log()}")
        self.host, self.port = match.group(1), int(match.group(2))
        self.url = f"{self.host}:{self.port}"
        self.metrics_url = f"http://{match.group(3)}/metrics"

    def log(self):
        self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def terminate(self, timeout=30):
        """Sends SIGTERM and returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


def wait_until(predicate, timeout=10.0, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def copy_tree(src, dst):
    shutil.copytree(src, dst)
