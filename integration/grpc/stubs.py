"""Generates the echo.proto stubs into a temporary directory and imports them.

Shared by server.py and client.py: `from stubs import pb, pb_grpc, grpc`. The stubs are made
at run time with `python -m grpc_tools.protoc` (nothing generated is committed) and the
directory is removed when the process exits.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_OUT = tempfile.mkdtemp(prefix="legate-grpc-stubs-")
atexit.register(shutil.rmtree, _OUT, True)
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={_OUT}",
     f"--grpc_python_out={_OUT}", os.path.join(HERE, "echo.proto")],
    check=True,
)
sys.path.insert(0, _OUT)

import grpc  # noqa: E402
import echo_pb2 as pb  # noqa: E402
import echo_pb2_grpc as pb_grpc  # noqa: E402

__all__ = ["grpc", "pb", "pb_grpc"]
