"""The test suite, by room: ``spice/``, ``eqegs_repo/`` (with one folder per sub-package),
``project/`` (docs and import rules) and ``helpers/`` (shared tree builders, ``ROOT``).

Every folder is a package, so pytest's default import mode puts the repository root on
``sys.path`` and imports ``tests.eqegs_repo.cooking.test_cook`` and so on; no test edits
``sys.path``."""
