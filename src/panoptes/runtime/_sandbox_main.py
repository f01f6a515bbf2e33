"""Entry of ``python -m panoptes.runtime._sandbox_main`` (kept apart from the package
imports so runpy does not find the module already loaded)."""

import sys

from panoptes.runtime.sandbox import main

sys.exit(main(sys.argv[1:]))
