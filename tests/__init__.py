"""xp's test suite: a package, so that plain ``pytest`` and ``python -m pytest`` both import
``tests.helpers`` (pytest puts the folder above the top package, the repository, on
``sys.path``) and test modules in different layer folders may share a basename."""
