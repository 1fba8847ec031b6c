import sys

from eqegs_repo.cli.main import main

sys.exit(main())
