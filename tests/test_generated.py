"""The committed gRPC code matches the .proto files (run build/gen_proto.py after an edit)."""

import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh():
    result = subprocess.run(
        [sys.executable, str(TOP / "build" / "gen_proto.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
