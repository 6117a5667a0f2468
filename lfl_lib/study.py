"""``python -m lfl_lib.study``: an alias of ``lfl study`` (:mod:`lfl_lib.experiments.study`).

Importing this module imports nothing: the library never imports the experiment drivers.
"""

if __name__ == "__main__":
    import sys

    from lfl_lib.experiments.study import main

    sys.exit(main())
