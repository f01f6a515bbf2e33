"""The test RTSP camera, now shipped with the product (panoptes/media/testcamera.py).

``/usr/bin/python3 tests/e2e/rtsp_server.py PORT [PATH] [options]`` runs that script,
so older callers keep working; new code uses ``panoptes.media.testcamera.CameraServer``.
"""

import runpy
import sys
from pathlib import Path

CAMERA = Path(__file__).resolve().parents[2] / "src" / "panoptes" / "media" / "testcamera.py"

if __name__ == "__main__":
    sys.argv[0] = str(CAMERA)
    runpy.run_path(str(CAMERA), run_name="__main__")
