"""``python -m lfl_lib.sweep``: an alias of ``lfl sweep`` (:mod:`lfl_lib.experiments.sweep`).

Importing this module imports nothing: the library never imports the experiment drivers.
"""

if __name__ == "__main__":
    import sys

    from lfl_lib.experiments.sweep import main

    sys.exit(main())
