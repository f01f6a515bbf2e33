"""`python -m panoptes.models CONFIG`: the model server process (started by ModelServer)."""

import json
import sys

from panoptes.models.server import _server_main

if __name__ == "__main__":
    _server_main(json.loads(sys.argv[1]))
