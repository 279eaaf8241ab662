import sys

from signpipe.cli import main

sys.exit(main())
