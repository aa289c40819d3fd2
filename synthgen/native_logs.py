"""Keep the face models' native start-up logs off the terminal unless asked for.

MediaPipe, TFLite and absl print from C++ straight to file descriptor 2 ("INFO: Created TensorFlow
Lite XNNPACK delegate", "W0000 00:00:... inference_feedback_manager.cc:114] ...", "All log messages
before absl::InitializeLog() ..."), once per labeller and worker process: hundreds of lines in a
`synthgen run`. Environment variables quiet the libraries that read them (glog, TensorFlow); absl
reads none, so fd 2 is passed through a filter thread that drops those line shapes and forwards
everything else (warnings, errors, tracebacks, progress bars) unchanged. Worker processes inherit
the filtered fd 2.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading

logger = logging.getLogger(__name__)

QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}

# TFLite writes its severity ("INFO: ") and its message in separate write() calls, and worker
# processes share the filtered fd 2, so two workers starting together give "INFO: INFO: Created
# ..." on one line and "Created ..." on the next: any run of prefixes, or none, is allowed.
NATIVE_LINE = re.compile(
    rb"^(?:"
    rb"[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.+-]+:\d+\] "  # absl/glog INFO and WARNING lines
    rb"|(?:(?:INFO|WARNING): )*(?:"
    rb"Created TensorFlow Lite"
    rb"|Initialized TensorFlow Lite runtime"
    rb"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"))"
)

_installed = False


def _pump(read_fd: int, out_fd: int) -> None:
    buf = b""
    with os.fdopen(read_fd, "rb", buffering=0) as src:
        while chunk := src.read(65536):
            buf += chunk
            *lines, buf = re.split(rb"(?<=[\n\r])", buf)
            keep = b"".join(line for line in lines if not NATIVE_LINE.match(line))
            if keep:
                os.write(out_fd, keep)
    if buf and not NATIVE_LINE.match(buf):
        os.write(out_fd, buf)


def quiet_native_logs() -> None:
    """Filter this process's (and its children's) fd 2 for the rest of the run. Idempotent."""
    global _installed
    if _installed:
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    try:
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
    except OSError as err:  # no fd 2 to filter (e.g. closed): nothing to quiet
        logger.debug("native log filter not installed: %s", err)
        return
    pump = threading.Thread(target=_pump, args=(read_fd, saved), name="native-log-filter", daemon=True)
    pump.start()
    _installed = True

    def _restore() -> None:
        import sys

        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # closes the pipe's last write end here: the pump drains and stops
        pump.join(timeout=2)

    atexit.register(_restore)
