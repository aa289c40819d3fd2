"""The command line's output: the face models' native start-up logs (MediaPipe, TFLite, absl, written
by C++ straight to fd 2, also from worker processes) are hidden unless --verbose; everything else
on stderr still comes through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.native_logs import NATIVE_LINE

ROOT = Path(__file__).parents[1]


def test_native_line_shapes() -> None:
    drop = [
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"W0000 00:00:1796084249.723863   29847 inference_feedback_manager.cc:114] Feedback manager\n",
        b"I0000 00:00:1796084249.806188   29844 gl_context.cc:369] GL version: 2.1\n",
        # Two workers' prefix and message writes interleaved on the shared fd 2 (seen in CI):
        b"INFO: INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
        b"Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    ]
    keep = [b"error: params.yaml: invalid parameters\n", b"Traceback (most recent call last):\n",
            b"E0000 00:00:1796084249.806188   29844 calculator_graph.cc:1] a native error stays\n",
            b"labelled 2 shards (0 already done)\n", b"WARNING: the split 'val' has 3 rows\n",
            b"INFO: something a user should read\n"]
    assert all(NATIVE_LINE.match(x) for x in drop)
    assert not any(NATIVE_LINE.match(x) for x in keep)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "synthgen", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_label_is_quiet_unless_verbose(tmp_path: Path) -> None:
    s = ["--set", "plan.n=4", "--set", "plan.shard_size=2", "--set", "plan.identities=2", "--set", "generate.width=96",
         "--set", "generate.height=96", "--set", "generate.workers=1", "--set", "label.workers=2"]
    assert _cli(tmp_path, "plan", *s).returncode == 0
    assert _cli(tmp_path, "generate", *s, "-q").returncode == 0
    loud = _cli(tmp_path, "label", *s, "-q", "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "TensorFlow Lite" in loud.stderr or "inference_feedback_manager" in loud.stderr
    import shutil

    shutil.rmtree(tmp_path / "data/work/incabin-faces/labelled")
    quiet = _cli(tmp_path, "label", *s, "-q")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.strip().splitlines()
    assert "labelled 2 shards (0 already done) -> data/work/incabin-faces/labelled" in lines
    assert not [line for line in lines if NATIVE_LINE.match(line.encode()) or "TensorFlow" in line
                or ".cc:" in line], lines
    assert len(lines) < len(loud.stderr.strip().splitlines())
