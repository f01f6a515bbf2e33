"""Model path speed, as ratios against baselines measured in the same run.

    .venv/bin/python bench/models.py [--rounds 5] [--iters 20] [--size 224] [--threads N]

A SqueezeNet 1.1-sized classifier (random weights, 1000 classes) is traced to
TorchScript, packed as a Neo-style .tar.gz and compiled. Then, on the same image:
  * compile time, cold and as a cache hit;
  * latency of the compiled model in ONNX Runtime against torch.jit (the TorchScript
    file itself), at 1 thread each and at N threads each (target: ONNX Runtime <= 1.0x);
  * a model-server round trip against session.run in this process (target: <= 1.05x
    + 0.3 ms), then 4 concurrent callers through the server.
Measurements alternate in blocks over several rounds and report medians, so a noisy
neighbour hits both sides alike. torch's pool is set to 1 thread whenever ONNX Runtime
or the server runs (torch.set_num_threads(1)): on 2 cores two spinning pools fight.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("bench/models.py needs torch: pip install 'panoptes[torch]'")

from panoptes.models import ModelServer, compile, default_threads, open_session
from panoptes.spec import ModelDescriptor, TensorSpec


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1 = nn.Conv2d(squeeze, expand, 1)
        self.e3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1)


class SqueezeNet11(nn.Module):
    """SqueezeNet 1.1's layers and sizes (about 1.2 M parameters)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2),
            nn.ReLU(),
            pool,
            Fire(64, 16, 64),
            Fire(128, 16, 64),
            pool,
            Fire(128, 32, 128),
            Fire(256, 32, 128),
            pool,
            Fire(256, 48, 192),
            Fire(384, 48, 192),
            Fire(384, 64, 256),
            Fire(512, 64, 256),
        )
        self.classifier = nn.Sequential(nn.Conv2d(512, classes, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.classifier(self.features(x))
        return torch.softmax(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1), 1)


def per_call_ms(fn: Callable[[], object], iters: int) -> list[float]:
    for _ in range(3):  # warm-up: allocators, thread pools, caches
        fn()
    samples = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return samples


def alternate(blocks: dict[str, Callable[[], object]], rounds: int, iters: int) -> dict:
    """Median ms per call of each block, measured in turn, `rounds` times."""
    samples: dict[str, list[float]] = {name: [] for name in blocks}
    for _ in range(rounds):
        for name, fn in blocks.items():
            samples[name] += per_call_ms(fn, iters)
    return {name: statistics.median(s) for name, s in samples.items()}


def torch_block(module: torch.jit.ScriptModule, x: torch.Tensor, threads: int):
    def run() -> object:
        torch.set_num_threads(threads)
        with torch.no_grad():
            return module(x)

    return run


def ort_block(session, feeds: dict[str, np.ndarray]):
    def run() -> object:
        torch.set_num_threads(1)  # torch idles at 1 thread while ONNX Runtime works
        return session.run(None, feeds)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=default_threads())
    args = parser.parse_args()
    n = args.threads
    shape = (1, 3, args.size, args.size)
    print(f"SqueezeNet 1.1-sized classifier, input {list(shape)}, {n} thread(s) = cores here")
    print(f"torch {torch.__version__}; torch.set_num_threads(1) while ONNX Runtime runs")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        torch.manual_seed(0)
        module = SqueezeNet11().eval()
        x = torch.rand(*shape)
        with torch.no_grad():
            torch.jit.trace(module, x).save(str(tmp_path / "model.pth"))
        import tarfile

        archive = tmp_path / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(tmp_path / "model.pth", "model.pth")
        descriptor = ModelDescriptor("PYTORCH", (TensorSpec("data", shape),))

        t = time.perf_counter()
        compiled = compile(archive, descriptor, "cpu", cache_dir=tmp_path / "cache")
        cold = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        hit = compile(archive, descriptor, "cpu", cache_dir=tmp_path / "cache")
        warm = (time.perf_counter() - t) * 1000
        assert hit.cache_hit
        print("\n== compile")
        print(f"cold (TorchScript -> ONNX, checks, dry run): {cold:8.1f} ms")
        print(f"cache hit (digest of the archive + lookup):  {warm:8.1f} ms  ({warm / cold:.4f}x)")

        scripted = torch.jit.load(str(tmp_path / "model.pth")).eval()
        feeds = {"data": x.numpy()}
        sessions = {t: open_session(compiled, target="cpu", intra_op_threads=t) for t in {1, n}}
        torch.set_num_threads(1)
        diff = np.max(np.abs(sessions[1].run(None, feeds)[0] - scripted(x).detach().numpy()))
        print(f"max |ONNX Runtime - TorchScript| on this input: {diff:.2e}")

        print("\n== latency: compiled model (ONNX Runtime) vs torch.jit, same input")
        for threads in sorted({1, n}):
            m = alternate(
                {
                    "torch": torch_block(scripted, x, threads),
                    "ort": ort_block(sessions[threads], feeds),
                },
                args.rounds,
                args.iters,
            )
            print(
                f"{threads} thread(s): TorchScript {m['torch']:7.2f} ms | ONNX Runtime "
                f"{m['ort']:7.2f} ms | ratio {m['ort'] / m['torch']:.2f}x (target <= 1.0x)"
            )

        print("\n== model server round trip vs in-process session.run")
        torch.set_num_threads(1)
        with ModelServer(compiled, name="bench", intra_op_threads=n) as server:
            client = server.client()
            m = alternate(
                {"inproc": ort_block(sessions[n], feeds), "server": lambda: client.call(feeds)},
                args.rounds,
                args.iters,
            )
            over = m["server"] - m["inproc"]
            budget = m["inproc"] * 1.05 + 0.3
            print(
                f"in-process {m['inproc']:.2f} ms | server {m['server']:.2f} ms | ratio "
                f"{m['server'] / m['inproc']:.3f}x, overhead {over:+.2f} ms "
                f"(target <= 1.05x + 0.3 ms = {budget:.2f} ms: "
                f"{'met' if m['server'] <= budget else 'NOT met'})"
            )

            calls = args.iters * 2
            before = client.stats()

            def caller() -> None:
                c = server.client()
                for _ in range(calls):
                    c.call(feeds)
                c.close()

            t = time.perf_counter()
            threads = [threading.Thread(target=caller) for _ in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            elapsed = time.perf_counter() - t
            stats = client.stats()
            runs = stats["runs"] - before["runs"]
            reqs = stats["requests"] - before["requests"]
            print(
                f"4 concurrent callers: {reqs / elapsed:.1f} inferences/s vs "
                f"{1000 / m['inproc']:.1f}/s one caller in-process; {reqs} requests in "
                f"{runs} model runs (fixed batch 1 here: batching needs a dynamic batch axis)"
            )
            client.close()


if __name__ == "__main__":
    main()
