"""``python -m modelrun_bench``."""

import sys

from modelrun_bench.main import main

sys.exit(main())
