"""Triton's perf_analyzer (shipped in the tritonclient wheel) drives the real daemon unchanged:
synchronous, asynchronous and streaming load with batched requests, reading the server-side
statistics it checks for consistency; a batch above max_batch_size is refused with a clear
message.

perf_analyzer links Debian's libb64 (`make test` installs it) and the CUDA runtime library
(the nvidia-cuda-runtime-cu12 wheel of the test extra; nothing runs on a GPU). Where either is
missing the tests are skipped, saying why."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_util import Daemon, linear_net, write_config, write_version  # noqa: E402

pytest.importorskip("tritonclient.grpc")


def perf_analyzer_command():
    """(argv prefix, environment) for the perf_analyzer next to this Python, or a skip."""
    binary = shutil.which("perf_analyzer", path=os.path.dirname(sys.executable))
    if binary is None:
        pytest.skip("perf_analyzer is not installed next to this Python (tritonclient wheel)")
    env = dict(os.environ)
    spec = importlib.util.find_spec("nvidia.cuda_runtime") if importlib.util.find_spec("nvidia") else None
    if spec is not None and spec.submodule_search_locations:
        lib = os.path.join(list(spec.submodule_search_locations)[0], "lib")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [lib, env.get("LD_LIBRARY_PATH")]))
    probe = subprocess.run([binary, "--version"], capture_output=True, text=True, env=env, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"perf_analyzer cannot start here: {(probe.stderr or probe.stdout).strip()}")
    return [binary], env


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("perf") / "models")
    write_version(root, "linear", 1, linear_net(16, 8, seed=5))
    write_config(root, "linear", {"max_batch_size": 8,
                                  "dynamic_batching": {"max_queue_delay_microseconds": 500}})
    server = Daemon(root)
    yield server
    assert server.terminate() == 0, server.log()


def run_perf_analyzer(daemon, *args):
    command, env = perf_analyzer_command()
    return subprocess.run(
        [*command, "-m", "linear", "-u", daemon.url, "-i", "grpc", "--measurement-mode", "count_windows",
         "--measurement-request-count", "40", "--stability-percentage", "100", "--max-trials", "3", *args],
        capture_output=True, text=True, env=env, timeout=300)


def inference_count(daemon):
    import tritonclient.grpc as triton

    stats = triton.InferenceServerClient(daemon.url).get_inference_statistics("linear")
    return stats.model_stats[0].inference_count


@pytest.mark.parametrize("mode", [["-b", "4", "--concurrency-range", "1:2"],
                                  ["--async", "--concurrency-range", "4"],
                                  ["--async", "--streaming", "-b", "2", "--concurrency-range", "3"]],
                         ids=["sync-batch4", "async", "streaming-batch2"])
def test_perf_analyzer_load_modes(daemon, mode):
    before = inference_count(daemon)
    result = run_perf_analyzer(daemon, *mode)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "error" not in output.lower(), output
    throughputs = [float(t) for t in re.findall(r"throughput: ([\d.]+) infer/sec", output)]
    concurrencies = mode[mode.index("--concurrency-range") + 1].split(":")
    assert len(throughputs) == int(concurrencies[-1]) - int(concurrencies[0]) + 1, output
    assert all(t > 0 for t in throughputs), output
    # perf_analyzer read the server's statistics for every window ...
    server_counts = [int(n) for n in re.findall(r"Inference count: (\d+)", output)]
    assert server_counts and all(n > 0 for n in server_counts), output
    # ... and the daemon counted every inference it answered (rows: batch size per request).
    batch = int(mode[mode.index("-b") + 1]) if "-b" in mode else 1
    assert inference_count(daemon) - before >= batch * 40, output


def test_perf_analyzer_batch_above_max_batch_size_is_refused(daemon):
    result = run_perf_analyzer(daemon, "-b", "16")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "batch size 16 is outside [1, max_batch_size=8]" in output, output
    inference_count(daemon)  # the daemon keeps answering (raises otherwise)
